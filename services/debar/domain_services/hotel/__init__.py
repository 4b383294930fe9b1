"""The hotel service: may this guest book this venue?"""
