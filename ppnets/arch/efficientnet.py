"""(being written) efficientnet family."""
