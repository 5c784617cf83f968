"""The lab's commands: make levers, make bench and its kin, make scale-check."""
