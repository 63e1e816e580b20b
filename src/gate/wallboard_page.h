/*
 * wallboard_page.h - the wallboard page (src/gate/wallboard.html: HTML,
 * CSS and JavaScript in one file, nothing loaded from elsewhere), compiled
 * in by cmake/embed_text.cmake and served by board.c at GET /wallboard.
 */
#ifndef CG_GATE_WALLBOARD_PAGE_H
#define CG_GATE_WALLBOARD_PAGE_H

extern const char cg_gate_wallboard_html[];

#endif
