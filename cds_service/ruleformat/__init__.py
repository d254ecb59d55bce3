"""The rule-file format: the models of rules/*.yaml, the card template language, the suggestion actions a
rule can name, and which files make a rules directory. Engine, cards, charts and calculations read it."""

# The public modules; each names its own public functions and types.
__all__ = ["actions", "rulefile", "text", "tree"]
