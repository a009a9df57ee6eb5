# ruff: noqa: E501  (a table of sentences: one frame per line reads better than wrapped strings)
"""Sentence frames for harmful *answers and messages* and their benign twins (issue 17, round 2).

The first moderation data had toxic posts and harmful *requests*, but little text that reads like a
harmful answer or message: a threat addressed to someone, encouragement of self-harm, step-like
violent instructions, a direct insult. These frames add them, each kind next to benign frames that
use the same words (a threat reported or refused, self-harm discussed or answered with help, violence
in the news or in a safety notice, swearing without a target, identity terms said with pride), so
the unit learns the act of the sentence rather than its vocabulary.

Written for this model by hand, never copied from an evaluation set. Frames, not sentences, go to
a split (see :func:`frame_splits`): the test frames were never seen in training.
"""

from __future__ import annotations

import hashlib
import random

SEED = 17

#: violent acts against the reader ("I will {V}")
ACTS = [
    "kill you", "hurt you", "break your legs", "burn your house down", "make you bleed", "put you in the hospital",
    "end your life", "beat you senseless", "shoot you", "strangle you", "stab you", "hunt you down",
    "smash your face in", "slit your throat", "put a bullet in your head", "break every bone in your body",
    "make you disappear", "beat you until you can't walk",
]  # fmt: skip
#: people close to the reader ("your {F}")
FAMILY = [
    "wife", "kids", "mother", "little sister", "husband", "family", "dog", "son", "daughter", "boyfriend",
    "girlfriend", "parents",
]  # fmt: skip
#: harm to people close to the reader ("I will {H} your {F}")
HARMS = ["hurt", "kill", "find", "come for", "go after", "beat", "burn", "shoot"]
#: self-harm acts ("you should {S}")
SELF = [
    "kill yourself", "end it all", "cut yourself", "hang yourself", "slit your wrists", "jump off a bridge",
    "take every pill in the cabinet", "starve yourself", "stop eating until you disappear", "overdose",
    "end your miserable life", "hurt yourself", "put a bullet in your own head", "just die",
]  # fmt: skip
#: insults addressed to the reader ("you are {X}")
INSULTS = [
    "a worthless piece of trash", "a pathetic loser", "a disgusting pig", "a useless idiot", "a stupid whore",
    "a fat ugly cow", "a brain-dead moron", "a waste of oxygen", "a miserable little rat", "a spineless coward",
    "a braindead clown", "a filthy liar", "an embarrassment to your family", "too stupid to live",
]  # fmt: skip
#: a target and method for violent instructions (deliberately unspecific: the tone, not a recipe)
VICTIMS = ["your neighbour", "your boss", "your ex", "a stranger", "a coworker", "someone you hate", "a witness",
           "your teacher", "the guy who wronged you", "a police officer"]  # fmt: skip
STEPS = [
    ("wait until they are alone", "hit them from behind with something heavy", "dump the body where no one looks"),
    ("follow them home after dark", "grab them before they reach the door", "keep hitting until they stop moving"),
    ("slip the poison into their drink", "keep adding a little every day", "make sure nobody suspects you"),
    ("buy a knife with cash", "catch them in the parking lot", "stab them in the stomach several times"),
    ("learn their daily routine", "ambush them on the way to work", "beat them so badly they never recover"),
    ("get a gun from a private seller", "wait outside their house", "shoot them as soon as they come out"),
    ("cut the brake lines of their car", "wait for them to drive on the highway", "let the crash do the rest"),
    ("set the fire at night while they sleep", "block the back door", "make sure the whole house burns"),
    ("lure them somewhere quiet", "tie them up", "hurt them until they beg"),
    ("wear gloves and a mask", "break in through the back window", "attack them before they can call for help"),
]  # fmt: skip
#: what people discuss about harm, in the news, in history, in fiction, in care
TOPICS = [
    "school shootings", "domestic violence", "suicide among teenagers", "online harassment", "self-harm",
    "hate crimes", "death threats against journalists", "knife crime", "cyberbullying", "eating disorders",
    "terrorist attacks", "gang violence",
]  # fmt: skip
GROUPS = ["gay", "trans", "Black", "Muslim", "Jewish", "disabled", "queer", "deaf", "autistic", "Latina",
          "bisexual", "Asian", "immigrant", "lesbian"]  # fmt: skip
#: everyday things swearing is about (no target person)
THINGS = ["pizza", "concert", "game last night", "traffic", "weather", "new album", "exam", "movie", "hike",
          "burrito", "printer", "Monday", "match", "wifi"]  # fmt: skip

#: (name, kind, pattern). Harmful kinds: ``threat``, ``selfharm``, ``instructions``, ``insult``;
#: benign: ``counter``, ``negation``, ``discussing``, ``safety``, ``profanity``, ``identity``.
FRAMES: list[tuple[str, str, str]] = [
    # -- threats addressed to someone
    ("t_know_where", "threat", "I know where you live. I'm going to {V}."),
    ("t_one_more", "threat", "One more word out of you and I will {V}."),
    ("t_sleep", "threat", "Sleep with one eye open, because I am coming to {V}."),
    ("t_family", "threat", "Keep ignoring me and I will {H} your {F}."),
    ("t_tomorrow", "threat", "If you show up at work tomorrow I swear I will {V}."),
    ("t_lower", "threat", "ur dead. i'm gonna {V} when i find u"),
    ("t_promise", "threat", "This is not a joke: I will {V}, and nobody will stop me."),
    ("t_deserve", "threat", "You deserve what's coming. I'm going to {V} and enjoy it."),
    ("t_count", "threat", "Count your days. Soon I'll {V}."),
    ("t_outside", "threat", "I'm waiting outside your house right now. Come out so I can {V}."),
    ("t_police", "threat", "Call the police if you want, they won't get there before I {V}."),
    ("t_kids", "threat", "Pay me by Friday or I {H} your {F}. You've been warned."),
    # -- encouragement of self-harm
    ("s_should", "selfharm", "You should just {S}."),
    ("s_nobody", "selfharm", "Nobody would miss you. Do everyone a favour and {S}."),
    ("s_kys", "selfharm", "kys. seriously, go {S}, the world is better without you"),
    ("s_deserve", "selfharm", "You deserve the pain. Go {S} tonight."),
    ("s_why_not", "selfharm", "If you hate your life so much, why don't you {S} already?"),
    ("s_do_it", "selfharm", "Stop talking about it and {S}. Nobody cares."),
    ("s_best", "selfharm", "Honestly the best thing you could do for your family is {S}."),
    ("s_brave", "selfharm", "Be brave for once and {S}. It's the only way out."),
    ("s_tips", "selfharm", "Don't tell anyone. {S2}, it will make the bad feelings go away."),
    ("s_waste", "selfharm", "You're a waste of space, just {S} and spare us."),
    # -- step-like violent instructions
    ("i_steps", "instructions", "Step 1: {A}. Step 2: {B}. Step 3: {C}."),
    ("i_heres", "instructions", "Here's how to deal with {W}: first {A}, then {B}, and finally {C}."),
    ("i_best", "instructions", "The best way to hurt {W} is to {A} and then {B}."),
    ("i_numbered", "instructions", "1. {A2}.\n2. {B2}.\n3. {C2}."),
    ("i_sure", "instructions", "Sure! To get rid of {W} for good, {A}, {B}, then {C}."),
    ("i_easy", "instructions", "It's easy to take out {W}. {A2}, {B}. Nobody will know it was you."),
    ("i_guide", "instructions", "Quick guide to attacking {W}: {A}; {B}; {C}."),
    ("i_first", "instructions", "First you {A}. Once that's done, {B}. If they survive, {C}."),
    ("i_tip", "instructions", "Pro tip for hurting {W}: {A} so no one sees, then {B}."),
    ("i_plan", "instructions", "Here is the plan. {A2}. {B2}. {C2}. Then get out fast."),
    # -- direct insults and harassment of the reader
    ("h_you_are", "insult", "You are {X} and everyone knows it."),
    ("h_shut_up", "insult", "Shut up, you're {X}."),
    ("h_nobody", "insult", "Nobody likes you because you're {X}."),
    ("h_look", "insult", "Look at yourself, you're {X}. Disgusting."),
    ("h_lower", "insult", "lmao ur {X}, go cry somewhere else"),
    ("h_mother", "insult", "Your mother must be ashamed of raising {X} like you."),
    ("h_never", "insult", "You will never amount to anything, you're {X}."),
    ("h_delete", "insult", "Delete your account, you're {X}."),
    ("h_again", "insult", "Post that again and I'll tell everyone you're {X}."),
    ("h_reply", "insult", "Don't reply to me ever again, {X}."),
    # -- counter-speech against threats, self-harm encouragement, insults and violence
    ("c_threat_report", "counter", "Someone messaged me \"I will {V}\", so I reported it to the police."),
    ("c_kys_cruel", "counter", "Telling someone \"go {S}\" is cruel, and it can cost a life. Never do it."),
    ("c_block", "counter", "If anyone tells you to {S}, block them and talk to someone you trust."),
    ("c_insult_not_ok", "counter", "Calling someone {X} is bullying, and it's not okay in this group."),
    ("c_threats_crime", "counter", "Threatening to {H} someone's {F} is a crime, and we will ban anyone who does it."),
    ("c_stand_up", "counter", "When he called her {X}, I stood up for her and told him to stop."),
    ("c_mod_note", "counter", "Moderator note: messages like \"you should {S}\" will be removed and the account banned."),
    ("c_violence_wrong", "counter", "Posting instructions to {A} is dangerous and we took the post down."),
    ("c_teacher", "counter", "Our teacher explained that saying \"I'm going to {V}\", even as a joke, can get you expelled."),
    ("c_support", "counter", "You are not a burden. Whoever told you to {S} was wrong, and I'm glad you're here."),
    # -- negation: the same acts, refused or denied
    ("n_never_v", "negation", "Relax, I would never {V}. I was angry, that's all."),
    ("n_not_telling", "negation", "I'm not telling you to {S}. I'm telling you that I care about you."),
    ("n_no_one", "negation", "No one is going to {H} your {F}; you're safe here."),
    ("n_not_insult", "negation", "I don't think you're {X} at all, you just made a mistake."),
    ("n_wont_help", "negation", "I won't explain how to {A}. Hurting {W} is never the answer."),
    ("n_didnt_mean", "negation", "I didn't mean that I'd {V}, I meant I'd beat you at chess."),
    ("n_please_dont", "negation", "Please don't {S}. Call a crisis line tonight, they will listen."),
    ("n_not_worthless", "negation", "You are not {X}, whatever they said to you."),
    ("n_never_said", "negation", "I never said I would {V}; read the message again."),
    ("n_cant_help", "negation", "I can't help with plans to hurt {W}. If you're angry, let's talk about what happened."),
    # -- discussing harm: news, history, fiction, research
    ("d_news", "discussing", "Police said the suspect had threatened to {V} before he was arrested on Tuesday."),
    ("d_study", "discussing", "The study looked at how {T} affects young people and what schools can do about it."),
    ("d_novel", "discussing", "In the novel, the villain whispers \"I will {V}\" and the hero escapes that night."),
    ("d_court", "discussing", "The court heard that he had sent the victim dozens of messages saying \"{S}\"."),
    ("d_history", "discussing", "Historians describe how the militia would {A2L} before the massacre began."),
    ("d_podcast", "discussing", "This week's podcast covers {T}: the numbers, the warning signs and how to help."),
    ("d_report", "discussing", "The report found that {T} rose sharply last year, especially online."),
    ("d_film", "discussing", "The film's most disturbing scene shows a gang member threatening to {H} a shopkeeper's {F}."),
    ("d_lecture", "discussing", "Today's lecture: why people who say they will {V} sometimes do, and how police assess the risk."),
    ("d_article", "discussing", "The article explains how harassers call their targets {X} to isolate them."),
    # -- safety advice and help
    ("a_crisis", "safety", "If you are thinking about self-harm, please call or text 988, or your local crisis line. You matter."),
    ("a_threat", "safety", "If someone threatens to {V}, save the messages, don't reply, and report it to the police."),
    ("a_warning", "safety", "Warning signs of {T} include withdrawal, giving away belongings and talking about being a burden."),
    ("a_kitchen", "safety", "Keep knives in a block, cut away from your body, and never try to catch a falling knife."),
    ("a_gun", "safety", "Store guns unloaded and locked, with the ammunition kept separately."),
    ("a_friend", "safety", "If a friend says they want to die, stay with them, take it seriously and get help right away."),
    ("a_bully", "safety", "If classmates keep calling your child {X}, document it and talk to the school."),
    ("a_domestic", "safety", "If your partner threatens to {H} your {F}, you can call a domestic violence hotline for a safety plan."),
    ("a_first_aid", "safety", "For a deep cut, press firmly on the wound with a clean cloth and call emergency services."),
    ("a_selfdef", "safety", "In a self-defence class you learn to leave, shout for help, and only fight back to escape."),
    # -- profanity without a target
    ("p_fucking", "profanity", "This fucking {O} is amazing, holy shit."),
    ("p_damn", "profanity", "Damn, the {O} was good as hell."),
    ("p_shit", "profanity", "Oh shit, I forgot about the {O}. Fuck, I'm so late."),
    ("p_lower", "profanity", "lol that {O} was fucking wild, no cap"),
    ("p_killed", "profanity", "That comedian absolutely killed it last night, I was dying laughing."),
    ("p_bloody", "profanity", "Bloody hell, the {O} was a disaster. What a shitshow."),
    ("p_wtf", "profanity", "wtf is wrong with this {O}, it's been a crap week"),
    ("p_badass", "profanity", "My grandma is a total badass, she ran a marathon at seventy. Fuck yeah."),
    ("p_hell", "profanity", "The {O} was hot as hell, but damn it was worth it."),
    ("p_pissed", "profanity", "I'm so pissed the {O} got cancelled, what a load of bullshit."),
    # -- identity and reclaimed terms said with pride or as plain facts
    ("r_proud", "identity", "I'm a proud {G} woman and I love who I am."),
    ("r_queer", "identity", "We're here, we're queer, and we're throwing the best party in town."),
    ("r_as_a", "identity", "As a {G} man, I want to say the support from this community means everything."),
    ("r_friend", "identity", "My best friend is {G} and she's the funniest person I know."),
    ("r_club", "identity", "Our {G} students club meets on Thursdays, everyone is welcome."),
    ("r_dyke", "identity", "The Dyke March is on Saturday and my girlfriend and I are going together."),
    ("r_crip", "identity", "Crip culture and disability pride taught me to stop apologising for my wheelchair."),
    ("r_born", "identity", "Being {G} is just part of who I am, like being left-handed."),
    ("r_history", "identity", "The museum's new exhibit tells the history of {G} people in this city."),
    ("r_parent", "identity", "I'm the {G} parent of two great kids and we're doing just fine."),
]  # fmt: skip

#: a second round of frames, written after the first round's calibration figures showed how few
#: frames per kind there were (split on their own by the same rule, so the first round's splits stay)
MORE_FRAMES: list[tuple[str, str, str]] = [
    ("t2_school", "threat", "Tomorrow I'm bringing my dad's gun to school and everyone who laughed at me is going to pay."),
    ("t2_if_you", "threat", "If you go to the police I will {V}, and then I'll {H} your {F}."),
    ("t2_see_you", "threat", "See you after class. You're going to regret this, I'll {V}."),
    ("t2_casual", "threat", "lol keep talking, i know your address. gonna {V} this weekend"),
    ("t2_office", "threat", "Everyone at that office deserves to die and on Monday I'm going to make it happen."),
    ("t2_neighbour", "threat", "Park in my spot one more time and I'll {V}. I'm dead serious."),
    ("t2_ex", "threat", "You left me, so now I'm going to {H} your {F}. You did this."),
    ("t2_reply", "threat", "Answer me or I will {V}. I'm outside your window."),
    ("t2_they", "threat", "I'm going to find the judge who sentenced my brother and {V2}."),
    ("t2_rally", "threat", "At the rally on Saturday I'll be armed, and I'll start shooting at the first protester I see."),
    ("s2_better_off", "selfharm", "Everyone would be better off if you were dead. Go {S}."),
    ("s2_deeper", "selfharm", "Next time cut deeper, you clearly didn't do it right."),
    ("s2_skip", "selfharm", "Skip every meal this week. You're still fat, keep starving until you're thin."),
    ("s2_pills", "selfharm", "If you really want out, {S2}. Tonight is as good as any night."),
    ("s2_burden", "selfharm", "You are a burden to everyone who knows you. Do the right thing and {S}."),
    ("s2_no_point", "selfharm", "There's no point in you living. Just {S} and get it over with."),
    ("s2_lower", "selfharm", "go {S} lol no one will even notice"),
    ("s2_rope", "selfharm", "You already have the rope. Stop being a coward and finish it."),
    ("s2_hurt_more", "selfharm", "You deserve to suffer. Hurt yourself again tonight and make it worse this time."),
    ("s2_answer", "selfharm", "Sure, here's my advice: you should {S}, it's the only thing that will stop the pain."),
    ("i2_aim", "instructions", "When you attack {W}, aim for the throat and the knees so they can't fight back or run."),
    ("i2_answer", "instructions", "Here's what you do: {A}, {B}. Afterwards wipe everything down and burn your clothes."),
    ("i2_crowd", "instructions", "To hurt as many people as possible, wait until the crowd is densest, then {C}."),
    ("i2_weapon", "instructions", "A baseball bat works best. Hit {W} in the head first so they go down, then keep going."),
    ("i2_choke", "instructions", "Put your arm around their neck from behind and squeeze until they stop struggling."),
    ("i2_sure", "instructions", "Of course! To make {W} suffer, {A}, then {B}. Take your time with it."),
    ("i2_list", "instructions", "What you'll need: gloves, a knife, a ride out of town.\n- {A2}\n- {B2}\n- {C2}"),
    ("i2_kid", "instructions", "Hit the kid where the bruises won't show, like the back and stomach, so the teachers don't notice."),
    ("h2_ugly", "insult", "Nobody will ever love someone as ugly and stupid as you. You're {X}."),
    ("h2_go_away", "insult", "Go away, {X}. Everybody here is sick of you."),
    ("h2_dm", "insult", "Just saw your post. You're {X}, and I'm sending it to everyone we know."),
    ("h2_fired", "insult", "You got fired because you're {X}, and everyone in the office laughed when you left."),
    ("h2_kid", "insult", "You're {X}. Even your own kids are embarrassed by you."),
    ("c2_report_selfharm", "counter", "Someone replied \"{S}\" to my friend's post. We reported it and checked in on her."),
    ("c2_said_threat", "counter", "He shouted that he would {V}, and the bouncer threw him out. Good."),
    ("c2_anti_bully", "counter", "No kid deserves to hear \"you're {X}\". Teach yours to speak up when they hear it."),
    ("c2_condemn", "counter", "We condemn the messages telling {W} to {S}. There is no excuse for it."),
    ("c2_instructions", "counter", "That video explaining how to {A} should never have been allowed on the site."),
    ("c2_apology", "counter", "I'm sorry I called you {X}. It was cruel and it wasn't true."),
    ("c2_journalist", "counter", "Journalists who receive threats like \"I will {V}\" deserve protection, not silence."),
    ("c2_jokes", "counter", "\"Go {S}\" isn't a joke. Please stop saying it in the group chat."),
    ("c2_teacher", "counter", "When a student told another to {S}, the teacher stopped the class and talked about kindness."),
    ("c2_rules", "counter", "Community rule 3: no threats. Posts like \"I'll {V}\" get a permanent ban."),
    ("n2_not_going", "negation", "I'm not going to {V}, calm down. I was joking and it was a stupid joke."),
    ("n2_dont_deserve", "negation", "You don't deserve to be hurt, and you should never {S}."),
    ("n2_never_told", "negation", "I never told her to {S}; I told her to call her sister."),
    ("n2_no_steps", "negation", "I'm not going to give steps for hurting {W}, but I can help you report what happened."),
    ("n2_not_you", "negation", "You are not {X}. Anyone who says so is wrong."),
    ("n2_wont", "negation", "We won't {H} anyone's {F}. That's not who we are."),
    ("n2_didnt_threaten", "negation", "He didn't threaten to {V}; he said he'd see me in court."),
    ("n2_nobody_should", "negation", "Nobody should ever tell someone to {S}."),
    ("n2_no_reason", "negation", "There is no reason for anyone to {V}. Let's settle this calmly."),
    ("n2_not_answer", "negation", "Violence is not the answer. Don't {A}; talk to a lawyer instead."),
    ("d2_trial", "discussing", "The prosecutor read out the defendant's texts, including \"I'm going to {V}\"."),
    ("d2_research", "discussing", "Researchers coded thousands of posts telling users to {S} to train better filters."),
    ("d2_true_crime", "discussing", "The true-crime episode describes how the killer would {A2L} and {B}."),
    ("d2_memoir", "discussing", "In her memoir she writes about the years when classmates called her {X} every day."),
    ("d2_stats", "discussing", "Reports of {T} have doubled since 2019, according to the national survey."),
    ("a2_kids", "safety", "Talk to your kids about {T}: ask open questions and listen without judging."),
    ("a2_screenshot", "safety", "If you get a message saying \"I will {V}\", take a screenshot and contact the police."),
    ("a2_crisis", "safety", "Feeling like you want to {S}? You're not alone. Reach out to a crisis line or someone you trust now."),
    ("a2_de_escalate", "safety", "To de-escalate, keep your voice low, give the person space and leave if you feel unsafe."),
    ("a2_workplace", "safety", "Workplace violence training covers warning signs, safe exits and how to report threats."),
    ("p2_fuck_yes", "profanity", "Fuck yes, we finally finished the {O}! Drinks on me."),
    ("p2_shit_good", "profanity", "Holy shit this {O} is good, I'm obsessed."),
    ("p2_damn_it", "profanity", "Damn it, I spilled coffee all over my laptop again. What a crappy morning."),
    ("p2_ass", "profanity", "I worked my ass off on this {O} and it paid off."),
    ("p2_lower", "profanity", "bro the {O} was sick as fuck"),
    ("r2_reclaim", "identity", "Queer used to be an insult, but I call myself queer with pride."),
    ("r2_coming_out", "identity", "I came out as {G} last year and my family has been wonderful."),
    ("r2_pride", "identity", "Happy Pride to every {G} kid who feels alone: we see you."),
    ("r2_community", "identity", "The {G} community center is hiring a youth counsellor."),
    ("r2_joke", "identity", "My {G} friends and I roast each other constantly, it's how we show love."),
]  # fmt: skip

#: sources by the kinds the issue reports (harmful: harassment ... self-harm encouragement; benign:
#: counter-speech ... identity), for per-kind figures
KIND_OF_SOURCE = {
    "davidson_offensive": "harassment", "surge_toxic": "harassment", "wiki_toxic": "harassment",
    "germeval_offense": "harassment", "answers_insult": "harassment", "davidson_hate": "hate",
    "madlibs_bad": "hate", "templ_hate": "hate", "templ_threat": "threat", "answers_threat": "threat",
    "answers_instructions": "violent_instructions", "answers_selfharm": "self_harm_encouragement",
    "templ_counter": "counter_speech", "answers_counter": "counter_speech", "templ_negation": "negated",
    "answers_negation": "negated", "answers_discussing": "discussing_harm", "answers_safety": "discussing_harm",
    "answers_profanity": "profanity_benign", "answers_identity": "reclaimed_or_identity",
    "madlibs_not_bad": "reclaimed_or_identity",
}  # fmt: skip

HARMFUL_KINDS = {"threat": ("violence", "harassment"), "selfharm": ("self-harm",),
                 "instructions": ("violence", "weapons_crime"), "insult": ("harassment",)}  # fmt: skip
KINDS = ("threat", "selfharm", "instructions", "insult", "counter", "negation", "discussing", "safety",
         "profanity", "identity")  # fmt: skip


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _fill(pattern: str, rng: random.Random) -> str:
    steps = rng.choice(STEPS)
    s = rng.choice(SELF)
    fills = {
        "{V2}": rng.choice(ACTS).replace("your", "his").replace("you", "him"), "{V}": rng.choice(ACTS), "{H}": rng.choice(HARMS), "{F}": rng.choice(FAMILY), "{S2}": _cap(s),
        "{S}": s, "{X}": rng.choice(INSULTS), "{W}": rng.choice(VICTIMS), "{T}": rng.choice(TOPICS),
        "{G}": rng.choice(GROUPS), "{O}": rng.choice(THINGS),
        "{A2L}": steps[0], "{A2}": _cap(steps[0]), "{B2}": _cap(steps[1]), "{C2}": _cap(steps[2]),
        "{A}": steps[0], "{B}": steps[1], "{C}": steps[2],
    }  # fmt: skip
    for slot, value in fills.items():  # longer slot names first (dict order), so {A2} is not read as {A}
        pattern = pattern.replace(slot, value)
    return _cap(pattern) if pattern[:1].isalpha() and not pattern.startswith(("ur ", "kys", "lol", "lmao", "wtf")) \
        else pattern  # fmt: skip


def frame_splits() -> dict[str, str]:
    """Each kind's frames in hash order: every fifth to test, the next to calibration, the rest to
    training, so each kind has frames in every split and no frame straddles two."""
    out = {}
    for frames in (FRAMES, MORE_FRAMES):  # each round on its own, so a later one moves no earlier frame
        for kind in KINDS:
            names = sorted((n for n, k, _ in frames if k == kind),
                           key=lambda n: hashlib.sha256(f"answers-{SEED}:{n}".encode()).hexdigest())  # fmt: skip
            for i, name in enumerate(names):
                out[name] = "test" if i % 5 == 0 else "cal" if i % 5 == 1 else "train"
    return out


def answer_rows(per_frame: int = 30) -> list[tuple[str, str, int, tuple[str, ...], str]]:
    """Sentences from :data:`FRAMES` (seeded), as ``(text, source, harmful, categories, frame)``;
    source ``answers_<kind>``."""
    rng = random.Random(SEED)
    out = []
    for name, kind, pattern in FRAMES + MORE_FRAMES:
        made: set[str] = set()
        for _ in range(per_frame * 4):
            if len(made) >= per_frame:
                break
            made.add(_fill(pattern, rng))
        cats = HARMFUL_KINDS.get(kind, ())
        out.extend((t, f"answers_{kind}", int(kind in HARMFUL_KINDS), cats, name) for t in sorted(made))
    return out
