import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                   # tests/reference.py
sys.path.insert(0, os.path.dirname(HERE))  # the ppnets package, without installing it
