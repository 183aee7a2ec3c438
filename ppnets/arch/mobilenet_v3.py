"""(being written) mobilenet_v3 family."""
