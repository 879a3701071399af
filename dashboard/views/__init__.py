"""Views (pages) of the dashboard; not named pages/ so Streamlit's legacy multipage mode stays off; each module has a ``render()`` used by ``st.navigation`` in ``dashboard/app.py``."""
