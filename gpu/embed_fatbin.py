#!/usr/bin/env python3
"""Writes a fatbin as a C array: embed_fatbin.py IN.fatbin OUT.c"""
import sys

data = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "w") as f:
    f.write("/* Generated from %s by gpu/embed_fatbin.py. */\n#include <stddef.h>\n"
            % sys.argv[1].rsplit("/", 1)[-1])
    f.write("const unsigned char vv_cuda_fatbin[] __attribute__((aligned(64))) = {\n")
    for i in range(0, len(data), 16):
        f.write("    " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    f.write("};\nconst size_t vv_cuda_fatbin_size = %d;\n" % len(data))
