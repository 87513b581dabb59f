"""The samplers: one module per sampler; a BPF sampler is a package holding its module and its ``.bpf.c``."""
