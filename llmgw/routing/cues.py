"""Lexical task cues: which task words a request's instruction uses, in eleven languages.

all-MiniLM-L6-v2 is an English model: "Fasse diesen Artikel zusammen" before an English article
embeds close to the article and to other German text, so it reads as *translate*. The verbs that
name a task are few and stable in every language, and matching them costs no embedding. Each task
here has a list of stems (English, French, German, Spanish, Italian, Portuguese, Dutch, Japanese,
Chinese, Russian, Polish); a text's cue vector has one dimension per task, 1.0 when one of its
stems occurs (case-folded, as a substring: stems are chosen to be word beginnings or whole words,
so "zusammenfass" matches every inflection). The vector is appended to the embedding, scaled by
``tasks.CUE_WEIGHT``, and the same regression weighs both: a cue is evidence, not a rule, so
"write a Python function that extracts e-mails" keeps its code embedding and learns that the
extract cue inside a code request means code.

The lists are written from dictionaries and grammar, not from any missed request; they hold task
words only, no topic words. Whether they help at all is decided by cross-validation and by leaving
each exemplar source out (``python -m bench.routing_sources``).
"""

from __future__ import annotations

import re

import numpy as np

#: task -> stems; latin-script stems match at a word start, CJK stems anywhere
STEMS: dict[str, tuple[str, ...]] = {
    "summarize": (
        # en
        "summar",
        "summaris",
        "sum up",
        "sum this up",
        "tl;dr",
        "tldr",
        "gist",
        "recap",
        "condense",
        "key points",
        "main points",
        "key takeaways",
        "in a nutshell",
        "boil down",
        "boil this down",
        "synopsis",
        "shorten",
        "overview of",
        "minutes",
        "highlights",
        # fr
        "résum",
        "resum",
        "synthès",
        "l'essentiel",
        "points clés",
        "en bref",
        # de
        "zusammenfass",
        "fasse",
        "kurzfassung",
        "überblick",
        "wichtigsten punkte",
        "kernaussage",
        # es / pt
        "resumen",
        "resume",
        "resuma",
        "resumo",
        "ideas principales",
        "puntos clave",
        "pontos principais",
        "sintetiza",
        # it
        "riassum",
        "riassunto",
        "sintesi",
        "punti chiave",
        # nl
        "samenvat",
        "vat ",
        "belangrijkste punten",
        # ru / pl
        "кратко",
        "резюме",
        "перескаж",
        "основные мысли",
        "суммир",
        "streść",
        "streszcz",
        "podsumuj",
        "podsumowanie",
        "najważniejsze punkty",
        # ja / zh
        "要約",
        "要点",
        "まとめ",
        "概要",
        "总结",
        "概括",
        "摘要",
    ),
    "extract": (
        "extract",
        "pull out",
        "pull the",
        "list all",
        "list every",
        "list the",
        "find all",
        "find every",
        "which dates",
        "what dates",
        "which companies",
        "named entit",
        "fill this",
        "fill the",
        "schema",
        "as json",
        "into json",
        "as csv",
        "into a csv",
        "into csv",
        "as a table",
        "into a table",
        "parse",
        "according to",
        "based on the passage",
        "mentioned",
        "label each",
        "tag each",
        # fr
        "extrai",
        "extrais",
        "relève",
        "liste tous",
        "liste toutes",
        "mentionné",
        "remplis",
        # de
        "extrahier",
        "liste alle",
        "nenne alle",
        "welche daten",
        "genannt",
        "erwähnt",
        "tabelle mit",
        # es / pt
        "extrae",
        "extraer",
        "extraia",
        "saca ",
        "enumera",
        "liste todos",
        "liste todas",
        "mencionad",
        "aparecen",
        # it
        "estrai",
        "elenca",
        "citat",
        "menzionat",
        # nl
        "haal ",
        "uit deze",
        "genoemd",
        # ru / pl
        "извлеки",
        "выпиши",
        "перечисли",
        "упомина",
        "wypisz",
        "wyciągnij",
        "wymień",
        # ja / zh
        "抽出",
        "リストアップ",
        "提取",
        "列出",
        "抽取",
    ),
    "translate": (
        "translat",
        "in english",
        "into english",
        "into french",
        "into german",
        "into spanish",
        "how do you say",
        "traduis",
        "tradui",
        "traduc",
        "traduz",
        "tradurr",
        "traduci",
        "übersetz",
        "vertaal",
        "переведи",
        "перевод",
        "przetłumacz",
        "tłumacz",
        "翻訳",
        "翻译",
        "译成",
        "英語に",
    ),
    "code": (
        "python",
        "javascript",
        "typescript",
        "function",
        "script",
        "regex",
        "sql",
        "code",
        "bug",
        "compile",
        "java ",
        "rust",
        "golang",
        "bash",
        "dockerfile",
        "api",
        "json schema",
        "class ",
        "def ",
        "error:",
        "exception",
        "traceback",
        "funktion",
        "fonction",
        "función",
        "funzione",
        "функци",
        "funkcj",
        "函数",
        "代码",
        "コード",
        "関数",
    ),
    "math": (
        "calculate",
        "compute",
        "solve",
        "equation",
        "integral",
        "derivative",
        "probability",
        "average of",
        "how many",
        "percent",
        "sum of",
        "berechne",
        "calcule",
        "calcula",
        "calcola",
        "bereken",
        "вычисли",
        "реши",
        "oblicz",
        "rozwiąż",
        "計算",
        "计算",
        "求解",
    ),
    "creative": (
        "poem",
        "story",
        "slogan",
        "haiku",
        "limerick",
        "lyrics",
        "song",
        "write a blog",
        "invent",
        "poème",
        "histoire",
        "gedicht",
        "geschichte",
        "poema",
        "cuento",
        "historia",
        "poesia",
        "storia",
        "verhaal",
        "стих",
        "рассказ",
        "wiersz",
        "opowiad",
        "诗",
        "故事",
        "物語",
    ),
}
TASKS = tuple(STEMS)
DIMENSIONS = len(TASKS)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _pattern(stems: tuple[str, ...]) -> re.Pattern[str]:
    parts = [re.escape(s) if _CJK.search(s) else r"(?<![\w])" + re.escape(s) for s in stems]
    return re.compile("|".join(parts))


_PATTERNS = {task: _pattern(stems) for task, stems in STEMS.items()}


def cue_vector(text: str) -> np.ndarray:
    """One dimension per task of :data:`TASKS`: 1.0 when the text holds one of its stems."""
    folded = text.casefold()
    return np.asarray([1.0 if _PATTERNS[t].search(folded) else 0.0 for t in TASKS], dtype=np.float32)
