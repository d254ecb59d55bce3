"""Pure clinical calculators; every threshold is an argument the caller reads from the rule files."""
