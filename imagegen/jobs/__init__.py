"""What a job is before it runs: job specs and their files, Foundry bodies, schedules, variants.

Imports only `imagegen.core`. Pure, apart from the DNS look-up that checks a job's webhook host.
"""
