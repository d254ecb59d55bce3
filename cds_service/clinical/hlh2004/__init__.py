"""The HLH-2004 diagnostic criteria (Henter 2007): counted in `calculator`, each criterion read and worded
in `criteria`, its summary lists in `lists`, and the `hlh` calculation's facts in `facts`."""

__all__ = ["calculator", "criteria", "facts", "lists"]
