"""llmgw's own phone and name recognizers: the shapes and names spaCy's small model and Presidio miss,
and the look-alikes they must leave alone."""

from __future__ import annotations

import re

import pytest

from llmgw.guards.phones import find_phones


def phones(text: str, floor: float = 0.3) -> list[str]:
    return [text[s:e] for s, e, score in find_phones(text) if score >= floor]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("call me at 322 327 102 please", "322 327 102"),  # "call" is a spaCy stop word: Presidio's boost misses it
        ("Moldova 73916\n92 34 70-Office", "92 34 70"),  # context after the number, glued with a hyphen
        ("They're not answering at 96 237271", "96 237271"),
        ("(212) 555-0147", "(212) 555-0147"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("001-321-194-8268x4420", "001-321-194-8268x4420"),
        ("Phone: 555-0147", "555-0147"),
        ("tel. 030/123456", "030/123456"),
        ("reach me on 415.555.0199 after six", "415.555.0199"),
        ("Singapore 72705\n2546712361 fax", "2546712361"),  # ten bare digits, context after
        ("call 0044 20 7946 0958", "0044 20 7946 0958"),  # a 00 prefix before a country code
        ("011 44 20 7946 0958", "011 44 20 7946 0958"),
        ("text me on (+44) 7700 900123", "(+44) 7700 900123"),  # the country code in parentheses, whole
    ],
)
def test_phone_shapes_people_type_are_found(text: str, number: str) -> None:
    assert phones(text) == [number]


@pytest.mark.parametrize(
    "text",
    [
        "born 2021-03-04 at 10.30",  # a date and a time
        "server 192.168.10.12 at home",  # an IP address, even next to a context word
        "order 123 456 789 shipped",  # digit groups without a context word
        "The office is at 38 73 Rue Ibn Al Khatib",  # a house number before a street
        "I paid 1,234,567 dollars in 1999",
        "card 4111 1111 1111 1111",  # 16 digits: a card, not a phone
        "invoice 2813882583 is paid",  # bare digits without a context word
        "Invoice 00042113 is overdue.",  # zero-padded id: no country code starts with 0
        "ticket 0012345 closed",  # 00 and too few digits for an international number
    ],
)
def test_phone_look_alikes_are_not_masked(text: str) -> None:
    assert phones(text) == []


@pytest.fixture(scope="module", params=["gateway", "tagged"])
def nlp(request):  # type: ignore[no-untyped-def]
    """The gateway's pipeline (NER and lemmas only) and spaCy's with its tagger: the recognizer
    reads part-of-speech tags when they are there and does without them when they are not."""
    spacy = pytest.importorskip("spacy")
    from llmgw.guards.nlp import SPACY_MODEL
    from llmgw.guards.pii import UNUSED_PIPES

    return spacy.load(SPACY_MODEL, disable=list(UNUSED_PIPES) if request.param == "gateway" else ["parser"])


def test_the_gateway_pipeline_finds_the_entities_of_the_full_one() -> None:
    spacy = pytest.importorskip("spacy")
    from llmgw.guards.nlp import SPACY_MODEL
    from llmgw.guards.pii import UNUSED_PIPES

    full = spacy.load(SPACY_MODEL)
    lean = spacy.load(SPACY_MODEL, disable=list(UNUSED_PIPES))
    assert "tagger" not in lean.pipe_names and "ner" in lean.pipe_names
    texts = [
        "Maria Lopez flew from Madrid to Boston on 3 March 2024 with United Airlines.",
        "Call Dr. Okafor at St. Mary's Hospital before Friday; the invoice is $1,200.",
        "The meeting with Siemens AG and the Berlin city council moved to next Tuesday.",
    ]
    for text in texts:
        ents = [(e.start_char, e.end_char, e.label_) for e in full(text).ents]
        assert ents and ents == [(e.start_char, e.end_char, e.label_) for e in lean(text).ents]


def names_in(nlp, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    from llmgw.guards.names import find_names

    return [text[s:e] for s, e, score in find_names(nlp(text)) if score >= 0.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("They had 6: Jan, Kristi, Stephen, Julie, Nina and Patricia.", {"Kristi", "Stephen", "Nina"}),
        ("Hello, this is Mr. Derek Crnić. Who are you?", {"Mr. Derek Crnić"}),
        ("have you been to a claudia nakajima concert before?", {"claudia nakajima"}),
        ("Follow up with Madison Boyes in 2 months.", {"Madison Boyes"}),
        ("Name:    Diana Fuchs", {"Diana Fuchs"}),
        # lower-case first names alone, as people write in chats and posts
        ("omg just saw jessica at the mall lol", {"jessica"}),
        ("lunch w kevin tmrw? he owes me", {"kevin"}),
        ("cant believe AMANDA said that to me", {"AMANDA"}),
    ],
)
def test_names_the_small_model_misses_are_found(nlp, text: str, expected: set[str]) -> None:  # type: ignore[no-untyped-def]
    assert expected <= set(names_in(nlp, text))


@pytest.mark.parametrize(
    "text",
    [
        "Will you mark the grace period on the calendar?",  # names that are ordinary words
        "See you on Sunday in September.",
        "We moved to Florida and then to Paris.",
        "Soo Glad Its Finally Friday Party Time",  # Title Case text: capitals say nothing
        "Please send the form to 12 Bjerke Street Suite 4.",
        "The Quarterly Report goes to Finance and Legal before the Board meets.",  # capitalised common nouns
        "i will mark the box and hope it gets there",  # lower-case words that are also names
        "ugh my mom said no lol",
    ],
)
def test_ordinary_capitalised_words_are_not_names(nlp, text: str) -> None:  # type: ignore[no-untyped-def]
    assert names_in(nlp, text) == []


def with_check_digit(body: str) -> str:
    """``body`` plus the digit that makes it pass the Luhn check."""
    from llmgw.guards.cards import luhn_ok

    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def grouped(number: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(number[i : i + size])
        i += size
    return sep.join(out)


#: (network, prefix, length, grouping): a number of every length 12-19 and the 2-series edges
CARDS = [
    ("maestro 12", "5018", 12, (4, 4, 4)),
    ("maestro 13", "6304", 13, (4, 4, 5)),
    ("visa 13", "4", 13, (4, 4, 5)),
    ("diners 14", "3056", 14, (4, 6, 4)),
    ("amex 15", "37", 15, (4, 6, 5)),
    ("visa 16", "4", 16, (4, 4, 4, 4)),
    ("mastercard 2221", "2221", 16, (4, 4, 4, 4)),
    ("mastercard 2720", "2720", 16, (4, 4, 4, 4)),
    ("mastercard 2-series", "2500", 16, (4, 4, 4, 4)),
    ("jcb 17", "3530", 17, (4, 4, 4, 5)),
    ("discover 18", "6011", 18, (4, 4, 4, 6)),
    ("unionpay 19", "6212", 19, (4, 4, 4, 4, 3)),
    ("visa 19", "4", 19, (4, 4, 4, 4, 3)),
    # grouped in fours, the short last group that leaves: how people write any long number
    ("visa 13 in fours", "4", 13, (4, 4, 4, 1)),
    ("diners 14 in fours", "36", 14, (4, 4, 4, 2)),
    ("maestro 17 in fours", "6304", 17, (4, 4, 4, 4, 1)),
    ("maestro 18 in fours", "6759", 18, (4, 4, 4, 4, 2)),
    ("visa 19 as 6-13", "4", 19, (6, 13)),
]


@pytest.mark.parametrize("sep", ["", " ", "-"])
@pytest.mark.parametrize(("network", "prefix", "length", "sizes"), CARDS, ids=[c[0] for c in CARDS])
def test_cards_of_every_issued_length_are_found(
    network: str, prefix: str, length: int, sizes: tuple[int, ...], sep: str
) -> None:
    from llmgw.guards.cards import find_cards

    body = (prefix + "739182645019273846")[: length - 1]
    number = grouped(with_check_digit(body), sizes, sep)
    text = f"please charge {number} today"
    assert [text[s:e] for s, e in find_cards(text)] == [number]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # a card's shape, fails Luhn
        "customer number 5018-0000-0007 on file",  # 12 digits, fails Luhn
        "part 2720 9912 3456 7891 in stock",  # 2-series shape, fails Luhn
        "IBAN DE89 3704 0044 0532 0130 00",  # digits of an IBAN are no card
        "serial 1234 5678 9012 3452 8",  # Luhn-valid in fours, but no network issues 17 digits after a 1
        "ticket 0004 1234 5678 4",  # fours with a short last group, Luhn-valid: no network starts with 0
    ],
)
def test_numbers_that_are_not_cards_are_not_found(text: str) -> None:
    from llmgw.guards.cards import find_cards, luhn_ok

    for run in re.findall(r"\d[\d -]{10,}\d", text):  # the example is what it claims to be
        digits = re.sub(r"\D", "", run)
        assert not (12 <= len(digits) <= 19) or not luhn_ok(digits) or "IBAN" in text or digits[0] in "01"
    assert find_cards(text) == []


@pytest.fixture(scope="module")
def default_analyzer():  # type: ignore[no-untyped-def]
    from pathlib import Path

    from llmgw.guards.pii import PiiAnalyzer
    from llmgw.guards.policy import load_policy

    policy = load_policy(Path(__file__).resolve().parent.parent / "guardrails" / "default.yaml")
    return PiiAnalyzer(policy.pii, cache_size=0)


def test_the_default_policy_masks_19_digit_and_2_series_cards_but_not_a_luhn_failing_order(default_analyzer) -> None:  # type: ignore[no-untyped-def]
    visa19 = grouped(with_check_digit("453201511283036"[:15] + "123"), (4, 4, 4, 4, 3), " ")
    mc2 = grouped(with_check_digit("222100000000000"), (4, 4, 4, 4), "-")
    maestro12 = with_check_digit("50180000000")
    text = f"Cards: {visa19}, {mc2} and {maestro12}. Order 4111-1111-1111-1112 shipped."
    cards = [text[f.start : f.end] for f in default_analyzer.analyze(text) if f.entity == "CREDIT_CARD"]
    assert cards == [visa19, mc2, maestro12]


@pytest.mark.parametrize(
    "iban",
    [
        "CZ0278438556781571249119",  # these two: Presidio's pattern takes a following "by" and the
        "TN7954165141456611412018",  # checksum passes over it by chance (about 1 in 97 numbers)
        "FR9654738586578003387377931",
        "DE89 3704 0044 0532 0130 00",
        "no9386011117947",
    ],
)
def test_an_iban_mask_ends_where_the_iban_ends(default_analyzer, iban: str) -> None:  # type: ignore[no-untyped-def]
    text = f"Please send it to IBAN {iban} by Friday."
    found = [text[f.start : f.end] for f in default_analyzer.analyze(text) if f.entity == "IBAN_CODE"]
    assert found == [iban]


def test_the_person_model_file_matches_the_features_and_its_points_rise() -> None:
    from llmgw.guards.person_score import person_scorer

    scorer = person_scorer()
    points = scorer.operating_points
    assert points and [p for p, _ in points] == sorted(p for p, _ in points)
    assert [t for _, t in points] == sorted(t for _, t in points), "a higher precision needs a higher score"
    assert scorer.threshold_for(0.5) <= scorer.threshold_for(0.8) <= scorer.threshold_for(0.99)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Follow up with Madison Boyes in 2 months.", "Madison Boyes"),
        ("Hello, this is Mr. Derek Crnić. Who are you?", "Mr. Derek Crnić"),
        ("Bye Dana Reyes", "Dana Reyes"),  # a greeting before a name is no part of it
    ],
)
def test_the_name_score_keeps_clear_names_whole(nlp, text: str, name: str) -> None:  # type: ignore[no-untyped-def]
    from llmgw.guards.person_score import person_scorer

    scores = {text[s:e]: p for s, e, p in person_scorer().score(nlp(text))}
    assert scores.get(name, 0) >= person_scorer().threshold_for(0.8)


@pytest.mark.parametrize(
    "text",
    [
        "The Quarterly Report goes to Finance and Legal before the Board meets.",
        "Apple Watch sales grew in China while Microsoft Teams lost users.",
        "Revenue from Tencent Video grew in the fourth quarter.",
    ],
)
def test_the_name_score_leaves_product_and_company_names_below_the_default_point(nlp, text: str) -> None:  # type: ignore[no-untyped-def]
    from llmgw.guards.person_score import person_scorer

    threshold = person_scorer().threshold_for(0.5)
    assert [(text[s:e], p) for s, e, p in person_scorer().score(nlp(text)) if p >= threshold] == []


def test_person_precision_sets_the_person_threshold() -> None:
    from llmgw.guards.person_score import person_scorer
    from llmgw.guards.pii import PiiAnalyzer
    from llmgw.guards.policy import EntityRule, PiiPolicy

    rule = {"PERSON": EntityRule(action="mask", threshold=0.5)}
    assert PiiAnalyzer(PiiPolicy(entities=rule)).threshold("PERSON") == 0.5
    strict = PiiAnalyzer(PiiPolicy(entities=rule, person_precision=0.9))
    assert strict.threshold("PERSON") == person_scorer().threshold_for(0.9)
    assert strict.threshold("EMAIL_ADDRESS") == PiiPolicy().default.threshold


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Upgrade to version 10.2.3.4 before Monday.", None),
        ("Firmware 4.12.0.217 fixes the Bluetooth bug.", None),
        ("Release: 6.1.0.18 is out", None),
        ("The server at 10.2.3.4 is down.", "10.2.3.4"),  # an address is still one
        ("ssh into 192.168.0.17 and restart it", "192.168.0.17"),
    ],
)
def test_a_dotted_quad_after_a_version_word_is_no_ip_address(default_analyzer, text: str, address: str | None) -> None:  # type: ignore[no-untyped-def]
    found = [text[f.start : f.end] for f in default_analyzer.analyze(text) if f.entity == "IP_ADDRESS"]
    assert found == ([address] if address else [])


def test_the_word_case_counts_tell_ordinary_words_from_names() -> None:
    from llmgw.guards.person_score import lower_share, word_case

    table = word_case()
    assert len(table) > 10_000
    assert (lower_share("miles", table) or 0) > 0.9  # "miles" is written in lower case
    assert (lower_share("tom", table) or 1) < 0.1  # "Tom" with a capital
    assert lower_share("zzqxv", table) is None


@pytest.mark.parametrize(
    "text",
    [
        "The Penny Black was the first adhesive postage stamp.",
        "Rice Pudding is on the dessert menu again.",
        "Upgrade to version 10.2.3.4 before Monday.",
        "Invoice 00042113 is overdue.",
    ],
)
def test_the_default_policy_leaves_capitalised_words_and_numbers_alone(default_analyzer, text: str) -> None:  # type: ignore[no-untyped-def]
    assert default_analyzer.analyze(text) == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("had lunch with jessica and tom yesterday", ["jessica"]),
        ("Can you ask Priya to send the slides to Marcus?", ["Priya", "Marcus"]),
        ("my sister kayleigh moved to Ohio last year", ["kayleigh"]),
        ("I met Sarah Connolly at the conference in Leeds.", ["Sarah Connolly"]),
    ],
)
def test_the_default_policy_still_masks_names_in_informal_text(default_analyzer, text: str, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert [text[f.start : f.end] for f in default_analyzer.analyze(text) if f.entity == "PERSON"] == names


def test_the_default_person_precision_is_the_most_recall_within_the_no_pii_target() -> None:
    """The default policy's operating point is the lowest precision target at which every informal
    no-PII calibration source has at most 10 % of its rows masked (scripts/train_person_scorer.py):
    a default changed without refitting, or a model refitted without a new default, fails here."""
    import json
    from pathlib import Path

    from llmgw.guards.person_score import MODEL_FILE
    from llmgw.guards.policy import load_policy

    informal = ("wnut_no_entity", "nopii_chat", "nopii_nq_open", "nopii_clinc150", "nopii_handwritten")
    root = Path(__file__).resolve().parent.parent
    chosen = load_policy(root / "guardrails" / "default.yaml").pii.person_precision
    points = json.loads(MODEL_FILE.read_text())["operating_points"]

    def within(point: dict) -> bool:  # type: ignore[type-arg]
        return all(point["no_pii_masked"][k] <= 0.10 for k in informal)

    at = [p for p in points if p["precision"] == chosen]
    assert at and within(at[0])
    assert not any(within(p) for p in points if p["precision"] < chosen)


def test_the_hand_written_no_pii_sentences_are_calibration_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """bench.pii_no_pii: the sentences written for this guard choose the operating point and are
    never reported as a test figure; rows checked by hand as naming a person are no no-PII rows."""
    from bench.pii_no_pii import CHAT_NAMED, HANDWRITTEN, no_pii_sets

    inj = tmp_path / "injection"
    for folder, file, header, rows in (
        ("benign_chat_prompts", "benign_chat_prompts.csv", "text", [f"prompt number {i}" for i in range(200)]),
        ("nq_open", "nq_open_questions.csv", "question", [f"question {i}" for i in range(150)]),
        ("clinc150", "clinc150_data_full.csv", "text,intent,split", ["pay my bill,pay_bill,test", "hi,text,test"]),
    ):
        (inj / folder).mkdir(parents=True)
        (inj / folder / file).write_text(header + "\n" + "\n".join(rows) + "\n")
    (tmp_path / "pii" / "wnut17").mkdir(parents=True)
    conll = "just\tO\nan\tO\nordinary\tO\nday\tO\n\nwe\tO\nsaw\tO\nDana\tB-person\ntoday\tO\n"
    for file in ("wnut17train.conll", "emerging.dev.conll"):
        (tmp_path / "pii" / "wnut17" / file).write_text(conll)
    written = [t for t in HANDWRITTEN.read_text().splitlines() if t.strip() and not t.startswith("#")]
    assert len(written) >= 100
    calibration, test = no_pii_sets(tmp_path, "calibration"), no_pii_sets(tmp_path, "test")
    assert calibration["handwritten"] == written and "handwritten" not in test
    assert calibration["wnut17"] == test["wnut17"] == ["just an ordinary day"]  # the row with a name is left out
    assert test["clinc150"] == ["pay my bill"]  # an intent that holds names is left out
    chat = calibration["chat"] + test["chat"]
    assert len(chat) == 160 - len(CHAT_NAMED) and not set(calibration["chat"]) & set(test["chat"])
