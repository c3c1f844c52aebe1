"""Production monitoring: the windows of the prediction log and its labels that a monitor run reads."""
