"""(being written) mobilenet_v1 family."""
