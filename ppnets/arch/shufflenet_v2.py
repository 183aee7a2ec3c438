"""(being written) shufflenet_v2 family."""
