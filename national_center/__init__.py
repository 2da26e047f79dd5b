"""A mock of the National Cybersecurity Monitoring Center (NCSC) for tests, demos, rehearsal.

The real center is out of reach, so this is a faithful stand-in for the API in
``docs/national-api.yaml``: signed report batches in, STIX 2.1 indicators out,
a ping for connectivity checks, and fault injection to rehearse outages.
"""
