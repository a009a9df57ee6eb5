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

#: task -> stems, one string per language, "|"-separated; latin-script stems match at a word
#: start, CJK stems anywhere
_LISTS: dict[str, tuple[str, ...]] = {
    "summarize": (
        "summar|sum up|sum this up|sum it up|tl;dr|tldr|gist|recap|condense|key points|main points"
        "|key takeaways|takeaways|in a nutshell|boil down|boil this down|boil it down|synopsis|shorten"
        "|overview of|minutes|highlights|abridge|digest|in short|the short version|bottom line|main idea"
        "|briefly|in brief|brief summary|outline the main",
        "résum|resum|synthès|l'essentiel|points clés|en bref|en résumé|idées principales",
        "zusammenfass|fasse|kurzfassung|überblick|wichtigsten punkte|kernaussage|kurz gesagt|das wichtigste|stichpunkt",
        "resumen|resume|resuma|resumo|ideas principales|puntos clave|pontos principais|sintetiza|en pocas palabras",
        "riassum|riassunto|sintesi|punti chiave|in breve|punti principali",
        "samenvat|vat |belangrijkste punten|in het kort|kernpunten",
        "кратко|резюме|перескаж|основные мысли|суммир|изложи|главное",
        "streść|streszcz|podsumuj|podsumowanie|najważniejsze punkty|w skrócie",
        "要約|要点|まとめ|概要|总结|概括|摘要|简述|归纳",
    ),
    "extract": (
        "extract|pull out|pull the|list all|list every|list the|find all|find every|which dates|what dates"
        "|which companies|which people|named entit|fill this|fill the|fill in|schema|as json|into json|in json"
        "|as csv|into a csv|into csv|as a table|into a table|parse|according to|based on the passage"
        "|based on the text|from the text|from this text|in the text|mentioned|label each|tag each|identify all"
        "|identify every",
        "extrai|extrais|relève|liste tous|liste toutes|mentionné|remplis|d'après le texte|selon le texte",
        "extrahier|liste alle|nenne alle|welche daten|genannt|erwähnt|tabelle mit|laut text|aus dem text"
        "|heraussuchen|herausziehen",
        "extrae|extraer|extraia|saca |enumera|liste todos|liste todas|mencionad|aparecen|según el texto"
        "|de acordo com o texto",
        "estrai|elenca|citat|menzionat|secondo il testo",
        "haal |uit deze|genoemd|volgens de tekst",
        "извлеки|выпиши|перечисли|упомина|найди все|согласно тексту",
        "wypisz|wyciągnij|wymień|znajdź wszystkie|według tekstu",
        "抽出|リストアップ|取り出|提取|列出|抽取|找出所有",
    ),
    "translate": (
        "translat|in english|into english|into french|into german|into spanish|into italian|into chinese"
        "|into japanese|how do you say|what is the word for|in another language",
        "tradui|traduis|traduc|traduz|tradurr|traduci|übersetz|vertaal|переведи|перевод|przetłumacz|tłumacz"
        "|auf deutsch|en français|en español|in het engels|на английский|po angielsku",
        "翻訳|翻译|译成|英語に|英文|中文",
    ),
    "code": (
        "python|javascript|typescript|java |c++|c#|golang|rust|kotlin|swift|php|ruby|scala|haskell|perl|bash"
        "|shell script|powershell|sql|select |html|css|react|django|flask|npm|pip |docker|kubernetes"
        "|terraform|yaml|regex|regular expression|git |github|api|endpoint|function|method|class |variable"
        "|compile|runtime|bug|debug|stack trace|traceback|exception|error:|segfault|refactor|unit test"
        "|algorithm|script|code|query|database|def |import ",
        "funktion|fonction|función|funzione|função|functie|функци|funkcj|programm|программ|kod|код",
        "函数|代码|コード|関数|程序|プログラム",
    ),
    "math": (
        "calculate|compute|solve|equation|integral|derivative|probability|average of|how many|percent|sum of"
        "|square root|prove|theorem|matrix|simplify",
        "berechne|calcule|calcula|calcola|bereken|вычисли|реши|oblicz|rozwiąż|gleichung|équation|ecuación"
        "|equazione|vergelijking|уравнение|równanie",
        "計算|计算|求解|方程",
    ),
    "creative": (
        "poem|story|slogan|haiku|limerick|lyrics|song|write a blog|invent|tagline|fairy tale|short fiction"
        "|screenplay|rhyme|sonnet|joke|brainstorm names|name ideas",
        "poème|histoire|conte|gedicht|geschichte|märchen|poema|cuento|historia|poesia|storia|favola|verhaal"
        "|стих|рассказ|сказк|wiersz|opowiad|bajk",
        "诗|故事|物語|詩|俳句",
    ),
}
STEMS: dict[str, tuple[str, ...]] = {
    task: tuple(stem for line in lines for stem in line.split("|") if stem) for task, lines in _LISTS.items()
}
TASKS = tuple(STEMS)
DIMENSIONS = len(TASKS)

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _index() -> tuple[dict[str, list[tuple[str, int]]], dict[int, re.Pattern[str]]]:
    """The latin-script stems (every script but CJK) by their first two characters, with their task's
    index: such a stem matches only where a word starts, so a text is read once, word start by word
    start, instead of once per stem (a 1,200-character turn: ~6 ms with one regex per task, ~0.3 ms
    so). CJK stems match anywhere (no spaces between words): one pattern per task that has any."""
    by_prefix: dict[str, list[tuple[str, int]]] = {}
    cjk_patterns: dict[int, re.Pattern[str]] = {}
    for i, task in enumerate(TASKS):
        for stem in STEMS[task]:
            if not _CJK.search(stem):
                by_prefix.setdefault(stem[:2], []).append((stem, i))
        cjk = [re.escape(s) for s in STEMS[task] if _CJK.search(s)]
        if cjk:
            cjk_patterns[i] = re.compile("|".join(cjk))
    return by_prefix, cjk_patterns


_BY_PREFIX, _CJK_PATTERNS = _index()
_WORD_START = re.compile(r"(?<!\w)\w")


def cue_vector(text: str) -> np.ndarray:
    """One dimension per task of :data:`TASKS`: 1.0 when the text holds one of its stems (a
    latin-script stem at the start of a word, a CJK stem anywhere)."""
    folded = text.casefold()
    found = np.zeros(DIMENSIONS, dtype=np.float32)
    for start in _WORD_START.finditer(folded):
        p = start.start()
        for stem, i in _BY_PREFIX.get(folded[p : p + 2], ()):
            if not found[i] and folded.startswith(stem, p):
                found[i] = 1.0
    if _CJK.search(folded):
        for i, pattern in _CJK_PATTERNS.items():
            if not found[i] and pattern.search(folded):
                found[i] = 1.0
    return found
