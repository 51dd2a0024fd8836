"""The model server: loaded models, batching, routing policies and the inference APIs.

It never imports the database: what to serve comes from a ``Catalog`` the process
wiring provides, and model files come from the artifact store.
"""
