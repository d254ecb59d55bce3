"""The CDS Hooks wire protocol: requests, responses, discovery, feedback and errors."""
