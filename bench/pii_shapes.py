"""Every shape of a card, an IBAN and a phone number people write, on synthetic numbers: which does
the default policy miss, or mask only in part?

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python -m bench.pii_shapes

The blind sets hold a few dozen numbers each and are read once; this sweep is the systematic side:
cards of every length 12-19 under each network's prefixes (Luhn check digit computed), compact,
in fours (with the short last group that leaves), in the networks' own groupings, with spaces or
dashes; IBANs of 25 countries (mod-97 check digits computed) compact, in fours, with dashes, in
lower case; phone numbers in 46 national and international writings. Each in three to six sentence
contexts. A value counts as found only when a mask covers exactly it (a mask that swallows the next
word, or leaves a bracket behind, is a miss). Synthetic numbers only: no blind row is read.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from llmgw.guards.cards import luhn_ok
from llmgw.guards.pii import PiiAnalyzer
from llmgw.guards.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]

CARD_PREFIXES = {
    12: ["6759", "50"],
    13: ["4"],
    14: ["36", "300"],
    15: ["34", "37"],
    16: ["4", "51", "55", "2221", "2720", "2500", "6011", "3528", "62", "65"],
    17: ["6304", "5018", "62", "6011"],
    18: ["6759", "62", "3528"],
    19: ["4", "62", "6011", "6759"],
}
IBAN_LENGTHS = dict(AT=20, BE=16, DE=22, DK=18, EE=20, ES=24, FI=18, HR=21, HU=28, IS=26, LT=20, NO=15, PL=28,
                    PT=25, SE=24, SI=19, SK=24, CZ=24, CH=21, RS=22, ME=22, TN=24, BA=20, FO=18, GL=18)  # fmt: skip
PHONES = [
    "+1 202 555 0143", "+1-202-555-0143", "(202) 555-0143", "202-555-0143", "202.555.0143", "1-800-555-0199",
    "+1 (202) 555-0143", "+44 20 7946 0958", "+44 7700 900123", "07700 900123", "020 7946 0958",
    "(+44) 7700 900123", "+44 (0)20 7946 0958", "+49 30 12345678", "+49 (0)30 12345678", "030 12345678",
    "0151 23456789", "+49 151 23456789", "030/12345678", "+33 1 23 45 67 89", "01 23 45 67 89", "06 12 34 56 78",
    "+33 6 12 34 56 78", "+91 98765 43210", "098765 43210", "+61 2 9876 5432", "0412 345 678", "+61 412 345 678",
    "+81 3-1234-5678", "03-1234-5678", "+55 11 91234-5678", "(11) 91234-5678", "+34 612 345 678", "612 34 56 78",
    "+39 06 1234 5678", "+31 20 123 4567", "06-12345678", "+46 8 123 456 78", "+48 22 123 45 67",
    "+7 495 123-45-67", "+353 1 234 5678", "+27 21 123 4567", "+65 6123 4567", "+852 2123 4567",
    "+86 10 1234 5678", "+82 2-123-4567",
]  # fmt: skip
VALUE_CONTEXTS = ["My card number is {}.", "Please send it to IBAN {} by Friday.", "{}", "account: {} (main)"]
PHONE_CONTEXTS = ["Call me at {} tomorrow.", "My number is {}.", "phone: {}", "You can reach Dana on {} after six.",
                  "Text {} when you land", "{}"]  # fmt: skip


def _groups(value: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(value[i : i + size])
        i += size
    return sep.join(out)


def cards(rnd: random.Random) -> list[tuple[str, str]]:
    """(shape, written card) for every length, prefix and grouping."""
    out = []
    for length, prefixes in CARD_PREFIXES.items():
        for prefix in prefixes:
            body = prefix + "".join(rnd.choice("0123456789") for _ in range(length - len(prefix) - 1))
            card = next(body + d for d in "0123456789" if luhn_ok(body + d))
            fours = [4] * (length // 4) + ([length % 4] if length % 4 else [])
            shapes = {"compact": [length], "fours": fours}
            shapes |= {15: {"4-6-5": [4, 6, 5]}, 14: {"4-6-4": [4, 6, 4]}, 19: {"6-13": [6, 13]}}.get(length, {})
            for name, sizes in shapes.items():
                for sep in (" ", "-") if len(sizes) > 1 else ("",):
                    out.append((f"card {length} {name}{' dashed' if sep == '-' else ''}", _groups(card, sizes, sep)))
    return out


def ibans(rnd: random.Random) -> list[tuple[str, str]]:
    """(shape, written IBAN) for each country in five writings."""
    out = []
    for cc, length in IBAN_LENGTHS.items():
        bban = "".join(rnd.choice("0123456789") for _ in range(length - 4))
        n = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
        iban = f"{cc}{98 - n % 97:02d}{bban}"
        fours = [4] * (length // 4) + ([length % 4] if length % 4 else [])
        for name, written in (("compact", iban), ("fours", _groups(iban, fours, " ")),
                              ("fours dashed", _groups(iban, fours, "-")), ("lower case", iban.lower()),
                              ("fours lower case", _groups(iban.lower(), fours, " "))):  # fmt: skip
            out.append((f"IBAN {name}", written))
    return out


def main() -> int:
    policy = load_policy(ROOT / "guardrails" / "default.yaml")
    analyzer = PiiAnalyzer(policy.pii, cache_size=0)
    rnd = random.Random(20261204)
    cases = [("CREDIT_CARD", shape, value, VALUE_CONTEXTS) for shape, value in cards(rnd)]
    cases += [("IBAN_CODE", shape, value, VALUE_CONTEXTS) for shape, value in ibans(rnd)]
    cases += [("PHONE_NUMBER", f"phone {value}", value, PHONE_CONTEXTS) for value in PHONES]
    tried: dict[str, int] = defaultdict(int)
    missed: dict[str, list[str]] = defaultdict(list)
    for entity, shape, value, contexts in cases:
        for context in contexts:
            text = context.format(value)
            found = [text[f.start : f.end] for f in analyzer.analyze(text) if f.entity == entity]
            tried[entity] += 1
            if value not in found:
                missed[entity].append(f"{shape!r} in {context!r}: masked {found}")
    for entity, n in tried.items():
        print(f"{entity}: {n - len(missed[entity])} of {n} found whole")
        for line in missed[entity]:
            print(f"  missed: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
