"""The real-estate service: may these buyers make this property deal?"""
