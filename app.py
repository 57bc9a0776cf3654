"""Watchtower portal: sign in, then the navigation of the pages the persona uses."""

import streamlit as st

from ui import session as ui_session

st.set_page_config(page_title="Watchtower", page_icon=":material/visibility:", layout="wide")

ui_session.demo_banner()
no_access = ui_session.company_sign_in()
user = ui_session.current_user()
if no_access:
    # A verified person without a Watchtower role sees why, and nothing else: no pages, no navigation.
    nav = st.navigation([st.Page(ui_session.no_access_page, title="No access", icon=":material/block:")],
                        position="hidden")
elif user is None:
    nav = st.navigation([st.Page(ui_session.sign_in_page, title="Sign in", icon=":material/login:")])
else:
    ui_session.sidebar(user)
    # Every page of the persona stays in view: they are grouped by section, and a persona has a dozen at most.
    nav = st.navigation(ui_session.navigation_for(user), expanded=True)
nav.run()
