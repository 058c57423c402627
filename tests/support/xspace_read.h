/* SPDX-License-Identifier: Apache-2.0 */
/* Test helpers that read a written profile back with protobuf-c and look things up by name, the
 * way xprof does (meaning comes from metadata names, not ids). Every helper fails the current
 * cmocka test on malformed input instead of returning garbage. */
#ifndef TFPROF_TEST_XSPACE_READ_H
#define TFPROF_TEST_XSPACE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "xplane.pb-c.h"

typedef Tensorflow__Profiler__XSpace XSpace;
typedef Tensorflow__Profiler__XPlane XPlane;
typedef Tensorflow__Profiler__XLine XLine;
typedef Tensorflow__Profiler__XEvent XEvent;
typedef Tensorflow__Profiler__XStat XStat;

/* Parses the file at path; free with tt_xspace_free(). */
XSpace *tt_read_xspace(const char *path);
void tt_xspace_free(XSpace *s);
/* The plane with this name, or NULL. */
const XPlane *tt_plane(const XSpace *s, const char *name);
/* The line with this id, or NULL. */
const XLine *tt_line(const XPlane *p, int64_t id);
/* The event's name from the plane's event metadata. */
const char *tt_event_name(const XPlane *p, const XEvent *e);
/* The name of a stat metadata id. */
const char *tt_stat_meta_name(const XPlane *p, uint64_t id);
/* The event's stat with this key, or NULL. */
const XStat *tt_event_stat(const XPlane *p, const XEvent *e, const char *key);
/* The plane's stat with this key, or NULL. */
/* The stat named key on the metadata of e's name (NULL when none): what the trace viewer shows
 * beside the event's own stats. */
const XStat *tt_event_metadata_stat(const XPlane *p, const XEvent *e, const char *key);
const XStat *tt_plane_stat(const XPlane *p, const char *key);
/* Start and end of an event in ps since the session began. */
int64_t tt_event_start_ps(const XLine *l, const XEvent *e);
int64_t tt_event_end_ps(const XLine *l, const XEvent *e);
/* Number of events with this name in the plane. */
size_t tt_count_events(const XPlane *p, const char *name);
/* Checks the structural rules of the format for every plane: metadata ids unique and matching
 * their map keys, every referenced id defined, names unique, events on a line nested and never
 * partially overlapping. */
void tt_check_well_formed(const XSpace *s);

#endif
