"""(being written) shufflenet_v1 family."""
