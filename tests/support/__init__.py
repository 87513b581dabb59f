"""Test support shared by the suites: live cgroups, bpftrace runs, frame readers."""
