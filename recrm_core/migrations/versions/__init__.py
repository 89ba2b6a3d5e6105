"""The core's revisions (branch ``core``); ``revisions.json`` lists them for the
start-up check, which reads it instead of importing these scripts."""
