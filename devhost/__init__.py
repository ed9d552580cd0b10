"""The local stand-in for the Azure Functions host and the services around it (never deployed)."""
