"""(being written) squeezenet family."""
