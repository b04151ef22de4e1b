#!/bin/sh
# The batch script of every damnit Slurm job: the job's command arrives as arguments, so no value in it is ever
# parsed by a shell.
exec "$@"
