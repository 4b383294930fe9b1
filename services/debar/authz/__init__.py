"""`debar serve authz`: Envoy's external authorization API (`envoy.service.auth.v3.Authorization/Check`) in front of
the sanction service, so that a platform behind Envoy or Istio is checked without code of its own.

What to check comes from the route (`route.py`: the `context_extensions` keys, and `rule_sets.py`), the subject
from the request (`subject.py`: a header or a JSON body field), the answer from one BatchCheck (the domain
services' sanction client and verdict), and the answer to Envoy from `answers.py`. It imports nothing of the
sanction service: like a domain service, it asks it over gRPC."""
