"""Entry points the upload sandbox's tests start in place of the real validator
(``mlops.registry.sandbox.CHILD_ENTRY``); each is run as a script by path."""
