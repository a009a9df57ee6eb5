"""Hand-written hard negatives (benign texts full of trigger words) and the template-built ones.

Kept apart because it is mostly data text written for this project, not code: that is why this
module is longer than the ~400-line guideline. Training only (and ``DEV_TRIGGER_PROMPTS`` dev only);
the bench uses a different, separately written set.
"""

from __future__ import annotations

import random

from .config import SEED

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
