"""Events as bytes: bodies gunzipped in bounded pieces, split into whole events, written in a
format."""
