"""The Responses API (POST /v1/responses and stored responses), a second front over the chat service."""
