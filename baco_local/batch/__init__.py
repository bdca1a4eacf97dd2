"""`baco batch`: many prompts from a JSON Lines file, answered in one batch, each answer
written to a JSON Lines file as it ends, so a stopped run continues where it stopped.

prompts_file: the input lines, checked one by one (a bad line names its number).
answers_file: the output, read back to resume and appended to one whole line at a time.
job: the same work for executors (worker processes, Ray actors), and answer_many, its
Python API.
"""
