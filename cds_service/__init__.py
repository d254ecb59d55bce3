"""A CDS Hooks 2.0 service whose clinical knowledge lives in rule files."""

__version__ = "0.1.0"
