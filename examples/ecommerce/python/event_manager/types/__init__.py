"""Message types: attrs classes whose class attributes are the events sent with them."""
