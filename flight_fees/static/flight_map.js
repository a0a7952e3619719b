/* flight_fees: draws a flight map page (flight_fees/lib/maps.py) with Leaflet, offline.
 *
 * The page carries its drawing data as JSON in its element #ff-map-data (type application/json).
 * Every text in it (tooltips, popups, labels) was HTML-escaped by the server, so it is given to
 * Leaflet as is. The background is the Natural Earth country outline layer of
 * basemap/countries-110m.js (window.FF_BASEMAP), plus a tile layer only when one is configured.
 */
(function () {
  "use strict";
  var holder = document.getElementById("ff-map");
  var node = document.getElementById("ff-map-data");
  if (!holder || !node) {
    return;
  }
  if (!window.L) {
    holder.textContent = "Leaflet did not load (static/leaflet/leaflet.js).";
    return;
  }
  var d = JSON.parse(node.textContent);
  var map = L.map(holder, { zoomSnap: 0.25, worldCopyJump: false });
  window.ffMap = map;

  // background: country outlines (offline), copied east/west when the view needs it
  var bases = {};
  var outline = null;
  if (window.FF_BASEMAP) {
    map.createPane("ffBasemap");
    map.getPane("ffBasemap").style.zIndex = 250;
    outline = L.layerGroup();
    var west = d.bounds[0][1];
    var east = d.bounds[1][1];
    [-360, 0, 360].forEach(function (shift) {
      if (east < shift - 200 || west > shift + 200) {
        return;
      }
      L.geoJSON(window.FF_BASEMAP, {
        pane: "ffBasemap",
        interactive: false,
        coordsToLatLng: function (c) {
          return L.latLng(c[1], c[0] + shift);
        },
        style: function () {
          return {
            className: "ff-basemap",
            color: "#9a9a9a",
            weight: 0.6,
            fillColor: "#f4f1ea",
            fillOpacity: 1
          };
        }
      }).addTo(outline);
    });
    bases["Country outlines (offline)"] = outline;
  }
  if (d.tiles && d.tiles.url) {
    var tiles = L.tileLayer(d.tiles.url, { attribution: d.tiles.attribution, maxZoom: 18 });
    bases["Map tiles"] = tiles;
    tiles.addTo(map);
  } else if (outline) {
    outline.addTo(map);
  }

  // the track (split at coverage gaps), its gaps, first and last position
  var overlays = {};
  var trackColour = d.context ? "#888888" : "#222222";
  var track = L.featureGroup();
  d.track.forEach(function (run) {
    if (run.length >= 2) {
      L.polyline(run, {
        className: "ff-track",
        color: trackColour,
        weight: 2,
        opacity: d.context ? 0.6 : 0.8,
        dashArray: d.context ? "2 6" : null
      }).addTo(track);
    } else if (run.length === 1) {
      L.circleMarker(run[0], { className: "ff-track", radius: 1, color: trackColour }).addTo(track);
    }
  });
  d.gaps.forEach(function (gap) {
    L.polyline(gap.line, { className: "ff-gap", color: "#888888", weight: 2, dashArray: "6 8" })
      .bindTooltip(gap.tip)
      .addTo(track);
  });
  d.ends.forEach(function (end) {
    L.circleMarker(end.at, {
      className: "ff-end",
      radius: 4,
      color: "#222222",
      fill: true,
      fillOpacity: 1
    })
      .bindTooltip(end.tip)
      .addTo(track);
  });
  track.addTo(map);
  overlays[d.track_label] = track;

  // one group per FIR: its polygon(s), crossing segments, entry/exit markers
  d.firs.forEach(function (fir) {
    var group = L.featureGroup();
    fir.polygons.forEach(function (rings) {
      L.polygon(rings, {
        className: "ff-fir",
        color: fir.colour,
        weight: 1,
        opacity: 0.6,
        fillColor: fir.colour,
        fillOpacity: 0.06
      })
        .bindTooltip(fir.tip)
        .addTo(group);
    });
    fir.segments.forEach(function (seg) {
      L.polyline(seg.line, { className: "ff-crossing", color: fir.colour, weight: 5, opacity: 0.9 })
        .bindTooltip(fir.tip)
        .bindPopup(seg.popup, { maxWidth: 320 })
        .addTo(group);
    });
    fir.markers.forEach(function (m) {
      L.circleMarker(m.at, {
        className: "ff-marker",
        radius: 5,
        color: "#ffffff",
        weight: 1.5,
        fill: true,
        fillColor: fir.colour,
        fillOpacity: 1
      })
        .bindTooltip(m.tip)
        .bindPopup(m.popup, { maxWidth: 320 })
        .addTo(group);
    });
    group.addTo(map);
    overlays[fir.label] = group;
  });

  L.control.layers(bases, overlays, { collapsed: false, position: "topright" }).addTo(map);
  L.control.scale().addTo(map);
  map.fitBounds(d.bounds, { padding: [20, 20] });
  document.body.setAttribute("data-ff-map", "ready");
})();
