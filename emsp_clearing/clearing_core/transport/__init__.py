"""OCPI 2.2.1 transport: the response envelope, tokens, headers and pagination (``envelope``)
and the HTTP client of a partner's endpoints (``client``)."""
