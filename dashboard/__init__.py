"""Streamlit dashboard of geo (big screen, dispatch, planner, events). Talks to the HTTP API only.

Run it with ``geo dashboard`` or ``streamlit run dashboard/app.py`` (``GEO_API_URL`` points at the API).
"""
