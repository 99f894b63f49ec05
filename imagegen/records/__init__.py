"""What a job leaves behind and what travels between its steps: manifests, activity messages,
review decisions, notification records, image metadata. Pydantic models and pure functions, no I/O.
"""
