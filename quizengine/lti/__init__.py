"""LTI 1.3 (1EdTech Core, Deep Linking, AGS, NRPS): the tool's side, through pylti1p3next.

keys: the tool's signing keys and their rotation. registry: platforms, deployments, the library's
tool configuration, LMS users and courses. store: one-time values (state, nonce, launches).
outbox: scores posted to line items, retried until accepted. roster: NRPS roster sync.
Nothing here knows about Flask requests; the views and the library's Flask adapters are in
web/lti.py and web/lti_flow.py.
"""
