"""The model: fitting and scoring it, its metrics and plots, the registry's copy of it, and the gate."""
