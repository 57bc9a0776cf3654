"""Streamlit helpers shared by the pages: the signed-in user, navigation, small renderers."""
