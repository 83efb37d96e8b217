"""Campaigns: YAML files that make videos on a schedule.

`schema` is the file format, `selection` judges and picks research for a run, and `service`
watches the folder, runs what is due and is the API the CLI, Slack and HTTP share.
"""
