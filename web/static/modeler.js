/* The designers' modeler (web/templates/design/modeler.html, web/design/modeler.py): the vendored bpmn-js Modeler
   (global BpmnJS of bpmn-modeler.production.min.js) with the Camunda moddle descriptor (camunda-bpmn-moddle, so
   camunda:formData, camunda:properties, formKey and candidateGroups are read and written back, never dropped), and
   our own properties panel for what Yicun's conventions need (DESIGN.md §6): the Chinese name, the lane (= the
   level: village, township, county), a user task's form fields, deadline in working days (`workdays(N)` on a timer
   boundary event), candidate group (department) and pausesClock, an end event's caseStatus, and the process's
   limit properties when nothing is selected.
   Every edit goes through the modeler's `modeling` API (several changes that belong together in one command,
   `yicun.batch`), so undo and redo work. The working copy is kept in localStorage under the process and the
   version it started from until it is deployed or discarded. "保存并检查" posts the XML to the server, which
   answers with every finding and its element id: shown on the diagram (a red or orange marker and a badge with
   the messages) and in the list under it (a click selects the element). A deploy refused because the process's
   tests failed ("outcome": "tests_failed") shows them there too and opens the panel above the drawing: the tests
   that failed (each linked to its tests page), a required reason and "仍然部署", which posts the same XML again
   with `override_reason`; any other refusal closes it. No inline code: the CSP forbids it. */
"use strict";
(function () {
  var LEVEL_OF_LANE = {
    village: "village", "村": "village", "村级": "village", township: "township", "乡镇": "township",
    "乡": "township", "镇": "township", "乡镇级": "township", county: "county", "县": "county", "县级": "county",
    "区": "county", "县区": "county", "县(区)": "county"
  };
  var PROCESS_PROPERTIES = [["legalLimitWorkdays", "legal"], ["promisedLimitWorkdays", "promised"],
                            ["extensionMaxWorkdays", "extension"]];
  var WORKDAYS = /^\s*workdays\(\s*(\d+)\s*\)\s*$/;
  var STORE_PREFIX = "yicun.modeler:";

  var box = document.querySelector(".modeler");
  var configNode = document.getElementById("modeler-config");
  if (!box || !configNode) return;
  var config = JSON.parse(configNode.textContent);
  var T = config.texts;
  var storeKey = STORE_PREFIX + config.processId + ":" + (config.baseVersion || "new");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  var statusLine = box.querySelector(".modeler-status");
  var notices = box.querySelector(".modeler-notices");
  var panel = box.querySelector(".modeler-panel");
  var findingsBox = box.querySelector(".modeler-findings");
  var toolbar = box.querySelector(".modeler-toolbar");
  var overrideBox = box.querySelector(".modeler-override");

  var modeler, modeling, registry, selection, canvas, overlays, moddle, bpmnFactory, elementFactory, commandStack;
  var dirty = false, saveTimer = null, findings = [], leaving = false;

  // ------------------------------------------------------------------------------------------------ helpers
  function fmt(text, params) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) { return params && k in params ? params[k] : m; });
  }

  function h(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k === "className") node.className = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "value") node.value = v;
      else if (k === "checked") node.checked = !!v;
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined && c !== false) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function say(text, kind) {
    statusLine.textContent = text || "";
    statusLine.className = "modeler-status" + (kind ? " " + kind : "");
  }

  function is(bo, type) { return !!bo && typeof bo.$instanceOf === "function" && bo.$instanceOf(type); }

  function batch(run) { commandStack.execute("yicun.batch", {run: run}); }

  function BatchHandler() {}
  BatchHandler.prototype.preExecute = function (context) { context.run(); };
  BatchHandler.prototype.execute = function () { return []; };
  BatchHandler.prototype.revert = function () { return []; };

  // ------------------------------------------------------------------------------------- extension elements
  function extValues(bo, type) {
    var ext = bo && bo.get ? bo.get("extensionElements") : null;
    return ext ? (ext.get("values") || []).filter(function (v) { return is(v, type); }) : [];
  }

  function ensureExt(element, bo) {
    var ext = bo.get("extensionElements");
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", {values: []});
      ext.$parent = bo;
      modeling.updateModdleProperties(element, bo, {extensionElements: ext});
    }
    return ext;
  }

  function getProperty(bo, name) {
    var found;
    extValues(bo, "camunda:Properties").forEach(function (props) {
      (props.get("values") || []).forEach(function (p) { if (p.name === name) found = p.value; });
    });
    return found;
  }

  /* camunda:properties/camunda:property name=… value=… on the element (what metadata.py reads); '' removes it */
  function setProperty(element, bo, name, value) {
    batch(function () {
      var holder = extValues(bo, "camunda:Properties");
      var existing = null, owner = null;
      holder.forEach(function (props) {
        (props.get("values") || []).forEach(function (p) { if (p.name === name) { existing = p; owner = props; } });
      });
      if (value === "" || value === null || value === undefined) {
        if (existing) {
          modeling.updateModdleProperties(element, owner, {values: owner.get("values").filter(function (p) { return p !== existing; })});
        }
        return;
      }
      if (existing) {
        modeling.updateModdleProperties(element, existing, {value: String(value)});
        return;
      }
      var ext = ensureExt(element, bo);
      var props = holder[0];
      if (!props) {
        props = moddle.create("camunda:Properties", {values: []});
        props.$parent = ext;
        modeling.updateModdleProperties(element, ext, {values: [props].concat(ext.get("values"))});
      }
      var prop = moddle.create("camunda:Property", {name: name, value: String(value)});
      prop.$parent = props;
      modeling.updateModdleProperties(element, props, {values: props.get("values").concat([prop])});
    });
  }

  // ------------------------------------------------------------------------------------------- the process
  function processInfo() {
    var root = canvas.getRootElement();
    var rbo = root && root.businessObject;
    if (is(rbo, "bpmn:Process")) return {element: root, bo: rbo};
    if (is(rbo, "bpmn:Collaboration")) {
      var parts = registry.filter(function (e) {
        return e.type === "bpmn:Participant" && e.businessObject.processRef;
      });
      var main = parts.filter(function (p) { return p.businessObject.processRef.isExecutable !== false; })[0] || parts[0];
      if (main) return {element: main, bo: main.businessObject.processRef, participant: main};
    }
    return null;
  }

  // ------------------------------------------------------------------------------------------------- lanes
  function lanes() {
    return registry.filter(function (e) { return e.type === "bpmn:Lane"; });
  }

  function levelOf(lane) {
    var bo = lane.businessObject;
    return LEVEL_OF_LANE[bo.id] || LEVEL_OF_LANE[(bo.name || "").trim()] || null;
  }

  function laneOf(element) {
    var bo = element.businessObject, found = null;
    lanes().forEach(function (lane) {
      if ((lane.businessObject.flowNodeRef || []).indexOf(bo) >= 0) found = lane;  // the innermost wins
    });
    return found;
  }

  function moveToLane(element, lane) {
    var vertical = lane.di && lane.di.isHorizontal === false;
    var delta = vertical
      ? {x: Math.round(lane.x + lane.width / 2 - (element.x + element.width / 2)), y: 0}
      : {x: 0, y: Math.round(lane.y + lane.height / 2 - (element.y + element.height / 2))};
    modeling.moveElements([element], delta);
  }

  // ------------------------------------------------------------------------------------------------ timers
  function timerDef(bo) {
    return (bo.eventDefinitions || []).filter(function (d) { return is(d, "bpmn:TimerEventDefinition"); })[0] || null;
  }

  function timerValue(def) {
    var kinds = ["timeDuration", "timeDate", "timeCycle"];
    for (var i = 0; i < kinds.length; i++) {
      var expr = def.get(kinds[i]);
      if (expr) return {kind: kinds[i], expr: expr, body: expr.body || ""};
    }
    return {kind: "timeDuration", expr: null, body: ""};
  }

  function setTimer(shape, def, kind, body) {
    var current = def.get(kind);
    if (current) {
      modeling.updateModdleProperties(shape, current, {body: body});
    } else {
      var expr = bpmnFactory.create("bpmn:FormalExpression", {body: body});
      expr.$parent = def;
      var props = {};
      props[kind] = expr;
      modeling.updateModdleProperties(shape, def, props);
    }
  }

  function attachedTimers(task) {
    return (task.attachers || []).filter(function (a) { return timerDef(a.businessObject); });
  }

  /* a deadline as our scaffold writes one: a non-interrupting timer boundary event 办理时限预警 with
     workdays(N), its path ending at an end event 超时预警已发出 */
  function addDeadline(task) {
    batch(function () {
      var shape = elementFactory.createShape({type: "bpmn:BoundaryEvent", eventDefinitionType: "bpmn:TimerEventDefinition"});
      var boundary = modeling.createShape(shape, {x: task.x + Math.round(task.width * 0.7), y: task.y + task.height},
                                          task, {attach: true});
      modeling.updateProperties(boundary, {name: T.deadline_name, cancelActivity: false});
      setTimer(boundary, timerDef(boundary.businessObject), "timeDuration", "workdays(5)");
      var end = modeling.appendShape(boundary, {type: "bpmn:EndEvent"},
                                     {x: boundary.x + boundary.width / 2 + 90, y: boundary.y + boundary.height / 2 + 40});
      modeling.updateProperties(end, {name: T.deadline_end});
    });
  }

  // ----------------------------------------------------------------------------------------- form fields
  function formData(bo) { return extValues(bo, "camunda:FormData")[0] || null; }

  function constraintsOf(field) {
    var v = field.get("validation");
    return v ? (v.get("constraints") || []) : [];
  }

  function isRequired(field) {
    return constraintsOf(field).some(function (c) { return c.name === "required"; });
  }

  function setRequired(task, field, on) {
    batch(function () {
      var validation = field.get("validation");
      var constraints = constraintsOf(field);
      var req = constraints.filter(function (c) { return c.name === "required"; })[0];
      if (on && !req) {
        if (!validation) {
          validation = moddle.create("camunda:Validation", {constraints: []});
          validation.$parent = field;
          modeling.updateModdleProperties(task, field, {validation: validation});
        }
        var c = moddle.create("camunda:Constraint", {name: "required"});
        c.$parent = validation;
        modeling.updateModdleProperties(task, validation, {constraints: [c].concat(validation.get("constraints") || [])});
      } else if (!on && req) {
        var rest = constraints.filter(function (x) { return x !== req; });
        if (rest.length) modeling.updateModdleProperties(task, validation, {constraints: rest});
        else modeling.updateModdleProperties(task, field, {validation: undefined});
      }
    });
  }

  function unique(base, taken) {
    for (var n = 1; ; n++) if (taken.indexOf(base + n) < 0) return base + n;
  }

  function addField(task) {
    var bo = task.businessObject;
    batch(function () {
      var ext = ensureExt(task, bo);
      var data = formData(bo);
      if (!data) {
        data = moddle.create("camunda:FormData", {fields: []});
        data.$parent = ext;
        modeling.updateModdleProperties(task, ext, {values: ext.get("values").concat([data])});
      }
      var taken = (data.get("fields") || []).map(function (f) { return f.id; });
      var field = moddle.create("camunda:FormField", {id: unique("field", taken), label: T.new_field, type: "string"});
      field.$parent = data;
      modeling.updateModdleProperties(task, data, {fields: (data.get("fields") || []).concat([field])});
      if (!bo.get("camunda:formKey")) {
        modeling.updateProperties(task, {"camunda:formKey": processInfo().bo.id + ":" + bo.id});
      }
    });
  }

  function removeField(task, field) {
    var data = field.$parent;
    modeling.updateModdleProperties(task, data, {fields: data.get("fields").filter(function (f) { return f !== field; })});
  }

  function setType(task, field, type) {
    batch(function () {
      modeling.updateModdleProperties(task, field, {type: type});
      var values = field.get("values") || [];
      if (type !== "enum" && values.length) modeling.updateModdleProperties(task, field, {values: []});
      if (type === "enum" && !values.length) addOption(task, field);
    });
  }

  function addOption(task, field) {
    var values = field.get("values") || [];
    var taken = values.map(function (v) { return v.id; });
    var option = moddle.create("camunda:Value", {id: unique("option", taken), name: T.new_option + (values.length + 1)});
    option.$parent = field;
    modeling.updateModdleProperties(task, field, {values: values.concat([option])});
  }

  // ------------------------------------------------------------------------------------------------- panel
  function input(key, value, onchange, extra) {
    var props = {type: "text", value: value === undefined || value === null ? "" : String(value), "data-key": key,
                 onchange: function (e) { onchange(e.target.value.trim()); }};
    Object.keys(extra || {}).forEach(function (k) { props[k] = extra[k]; });
    return h("input", props);
  }

  function select(key, value, options, onchange, emptyLabel) {
    var node = h("select", {"data-key": key, onchange: function (e) { onchange(e.target.value); }},
      (emptyLabel !== undefined ? [h("option", {value: "", text: emptyLabel})] : []).concat(options.map(function (o) {
        return h("option", {value: o[0], text: o[1]});
      })));
    node.value = value || "";
    return node;
  }

  function row(label, control, hint) {
    return h("label", {className: "row"}, [h("span", {text: label}), control, hint ? h("small", {className: "hint", text: hint}) : null]);
  }

  function typeLabel(bo) {
    var name = (bo.$type || "").replace(/^bpmn:/, "");
    name = name.charAt(0).toLowerCase() + name.slice(1);
    return T["type_" + name] || bo.$type;
  }

  function processSection(info) {
    var bo = info.bo, element = info.element;
    var children = [h("h3", {text: T.process})];
    if (config.mode === "new") {
      children.push(row(T.process_id, input("process-id", bo.id, function (v) {
        if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(v)) { say(T.id_invalid, "error"); render(); return; }
        if (v !== bo.id && registry.get(v)) { say(fmt(T.id_taken, {id: v}), "error"); render(); return; }
        var old = bo.id;
        batch(function () {
          if (info.participant) modeling.updateModdleProperties(element, bo, {id: v});
          else modeling.updateProperties(element, {id: v});
          registry.filter(function (e) { return is(e.businessObject, "bpmn:UserTask"); }).forEach(function (task) {
            var key = task.businessObject.get("camunda:formKey") || "";
            if (key.indexOf(old + ":") === 0) modeling.updateProperties(task, {"camunda:formKey": v + key.slice(old.length)});
          });
        });
      }, {maxlength: 100, spellcheck: "false"})));
    } else {
      children.push(row(T.process_id, h("code", {text: bo.id})));
    }
    children.push(row(T.process_name, input("process-name", bo.name, function (v) {
      batch(function () {
        var old = bo.name;
        modeling.updateModdleProperties(element, bo, {name: v || undefined});
        if (info.participant && info.participant.businessObject.name === old) {
          modeling.updateProperties(info.participant, {name: v || undefined});
        }
      });
    }, {maxlength: 200})));
    PROCESS_PROPERTIES.forEach(function (p) {
      children.push(row(T[p[1]], input("prop-" + p[0], getProperty(bo, p[0]), function (v) {
        setProperty(element, bo, p[0], v);
      }, {type: "number", min: 0, max: 3650, step: 1, inputmode: "numeric"})));
    });
    children.push(row(T.approve, select("prop-approveLevel", getProperty(bo, "approveLevel"), config.levels,
      function (v) { setProperty(element, bo, "approveLevel", v); }, T.none)));
    return h("section", {className: "panel-process"}, children);
  }

  function timerEditor(shape, keyPrefix) {
    var bo = shape.businessObject, def = timerDef(bo), t = timerValue(def);
    var match = t.kind === "timeDuration" ? WORKDAYS.exec(t.body) : null;
    if (match || !t.body) {
      return h("span", {className: "workdays"}, [
        input(keyPrefix + "-days", match ? match[1] : "", function (v) {
          if (!/^\d+$/.test(v)) { render(); return; }
          setTimer(shape, def, "timeDuration", "workdays(" + parseInt(v, 10) + ")");
        }, {type: "number", min: 1, max: 3650, step: 1, inputmode: "numeric"}),
        h("span", {text: T.workdays})]);
    }
    return input(keyPrefix + "-text", t.body, function (v) { setTimer(shape, def, t.kind, v); },
                 {maxlength: 200, spellcheck: "false", title: t.kind});
  }

  function deadlineSection(task) {
    var timers = attachedTimers(task);
    var children = [h("h3", {text: T.deadline})];
    timers.forEach(function (timer, i) {
      var bo = timer.businessObject;
      children.push(h("div", {className: "timer"}, [
        h("div", {className: "timer-head"}, [
          h("bdi", {text: bo.name || bo.id}),
          h("small", {className: "muted", text: bo.cancelActivity === false ? T.non_interrupting : T.interrupting}),
          h("button", {type: "button", className: "link", text: T.select,
                       onclick: function () { selection.select(timer); }})]),
        timerEditor(timer, "deadline-" + i)]));
    });
    if (!timers.length) {
      children.push(h("button", {type: "button", "data-key": "add-deadline", text: T.add_deadline,
                                 onclick: function () { addDeadline(task); }}));
    }
    return h("section", {className: "panel-deadline"}, children);
  }

  function fieldEditor(task, field, i) {
    var key = "field-" + i;
    var values = field.get("values") || [];
    var others = constraintsOf(field).filter(function (c) { return c.name !== "required"; });
    var parts = [
      h("div", {className: "field-row"}, [
        row(T.field_id, input(key + "-id", field.id, function (v) {
          modeling.updateModdleProperties(task, field, {id: v});
        }, {maxlength: 64, spellcheck: "false"})),
        row(T.field_label, input(key + "-label", field.label, function (v) {
          modeling.updateModdleProperties(task, field, {label: v || undefined});
        }, {maxlength: 200}))]),
      h("div", {className: "field-row"}, [
        row(T.field_type, select(key + "-type", field.type || "string", config.field_types, function (v) {
          setType(task, field, v);
        })),
        h("label", {className: "check"}, [h("input", {type: "checkbox", "data-key": key + "-required", checked: isRequired(field),
                                                      onchange: function (e) { setRequired(task, field, e.target.checked); }}),
                                          h("span", {text: T.required})]),
        h("button", {type: "button", className: "link danger", "data-key": key + "-remove", text: T.remove,
                     onclick: function () { removeField(task, field); }})])];
    if ((field.type || "string") === "enum") {
      var list = h("ol", {className: "options"}, values.map(function (option, j) {
        return h("li", {}, [
          input(key + "-opt-" + j + "-id", option.id, function (v) {
            modeling.updateModdleProperties(task, option, {id: v});
          }, {maxlength: 64, spellcheck: "false", "aria-label": T.option_id, placeholder: T.option_id}),
          input(key + "-opt-" + j + "-name", option.name, function (v) {
            modeling.updateModdleProperties(task, option, {name: v || undefined});
          }, {maxlength: 200, "aria-label": T.option_name, placeholder: T.option_name}),
          h("button", {type: "button", className: "link danger", text: T.remove, onclick: function () {
            modeling.updateModdleProperties(task, field, {values: field.get("values").filter(function (o) { return o !== option; })});
          }})]);
      }));
      parts.push(h("div", {className: "options-box"}, [h("span", {className: "label", text: T.options}), list,
        h("button", {type: "button", className: "link", "data-key": key + "-add-option", text: T.add_option,
                     onclick: function () { addOption(task, field); }})]));
    }
    if (others.length) {
      parts.push(h("small", {className: "hint", text: T.other_constraints + others.map(function (c) {
        return c.name + (c.config !== undefined ? "=" + c.config : "");
      }).join(", ")}));
    }
    return h("li", {className: "field"}, parts);
  }

  function fieldsSection(task) {
    var data = formData(task.businessObject);
    var fields = data ? (data.get("fields") || []) : [];
    return h("section", {className: "panel-fields"}, [
      h("h3", {text: T.fields + " (" + fields.length + ")"}),
      h("ol", {className: "fields"}, fields.map(function (f, i) { return fieldEditor(task, f, i); })),
      h("button", {type: "button", "data-key": "add-field", text: T.add_field, onclick: function () { addField(task); }})]);
  }

  function userTaskSection(task) {
    var bo = task.businessObject;
    return h("section", {className: "panel-task"}, [
      row(T.groups, input("groups", bo.get("camunda:candidateGroups"), function (v) {
        modeling.updateProperties(task, {"camunda:candidateGroups": v || undefined});
      }, {maxlength: 200, list: "modeler-departments"}), T.groups_hint),
      h("datalist", {id: "modeler-departments"}, config.departments.map(function (d) { return h("option", {value: d}); })),
      row(T.form_key, input("form-key", bo.get("camunda:formKey"), function (v) {
        modeling.updateProperties(task, {"camunda:formKey": v || undefined});
      }, {maxlength: 200, spellcheck: "false"})),
      row(T.pauses, select("pauses", getProperty(bo, "pausesClock"), config.pause_kinds, function (v) {
        setProperty(task, bo, "pausesClock", v);
      }, T.no_pause)),
      deadlineSection(task),
      fieldsSection(task)]);
  }

  function elementSection(element) {
    var bo = element.businessObject;
    var children = [h("h3", {}, [typeLabel(bo), " ", h("code", {className: "muted", text: bo.id})])];
    children.push(row(T.name, input("name", bo.name, function (v) {
      modeling.updateProperties(element, {name: v || undefined});
    }, {maxlength: 200})));
    if (is(bo, "bpmn:FlowNode") && !is(bo, "bpmn:BoundaryEvent")) {
      var levelLanes = lanes().filter(levelOf);
      if (levelLanes.length) {
        var current = laneOf(element);
        children.push(row(T.lane, select("lane", current ? current.id : "", levelLanes.map(function (l) {
          var name = l.businessObject.name || l.id;
          var level = (config.levels.filter(function (x) { return x[0] === levelOf(l); })[0] || ["", name])[1];
          return [l.id, level === name ? name : name + " · " + level];
        }), function (v) {
          var lane = registry.get(v);
          if (lane) moveToLane(element, lane);
        }, current ? undefined : T.none)));
      } else {
        children.push(h("p", {className: "hint", text: T.no_lanes}));
      }
    }
    if (is(bo, "bpmn:UserTask")) children.push(userTaskSection(element));
    if ((is(bo, "bpmn:BoundaryEvent") || is(bo, "bpmn:IntermediateCatchEvent") || is(bo, "bpmn:StartEvent")) && timerDef(bo)) {
      children.push(row(T.timer_text, timerEditor(element, "timer")));
      if (is(bo, "bpmn:BoundaryEvent")) {
        children.push(row(T.deadline, select("cancel", bo.cancelActivity === false ? "no" : "yes",
          [["no", T.non_interrupting], ["yes", T.interrupting]],
          function (v) { modeling.updateProperties(element, {cancelActivity: v === "yes"}); })));
      }
    }
    if (is(bo, "bpmn:EndEvent")) {
      children.push(row(T.case_status, select("case-status", getProperty(bo, "caseStatus"), config.case_statuses,
        function (v) { setProperty(element, bo, "caseStatus", v); }, T.none)));
    }
    return h("section", {className: "panel-element"}, children);
  }

  function render() {
    if (!modeler) return;
    var active = document.activeElement && panel.contains(document.activeElement)
      ? document.activeElement.getAttribute("data-key") : null;
    var selected = selection.get();
    var element = selected.length === 1 ? selected[0] : null;
    if (element && element.type === "label") element = element.labelTarget;
    var content = [h("h2", {text: T.panel})];
    var info = processInfo();
    if (!element || element === canvas.getRootElement() || element.type === "bpmn:Participant") {
      content.push(h("p", {className: "hint", text: T.select_hint}));
      if (info) content.push(processSection(info));
    } else {
      content.push(elementSection(element));
    }
    panel.replaceChildren.apply(panel, content);
    if (active) {
      var again = panel.querySelector('[data-key="' + active + '"]');
      if (again) again.focus();
    }
  }

  // ---------------------------------------------------------------------------------------------- findings
  function findModdle(id) {
    var found = null, seen = [];
    function walk(node) {
      if (found || !node || typeof node !== "object" || seen.indexOf(node) >= 0) return;
      seen.push(node);
      if (node.$type && node.id === id && node.$type.indexOf("bpmndi:") !== 0) { found = node; return; }
      var desc = node.$descriptor;
      (desc && desc.properties || []).forEach(function (p) {
        if (p.isReference || found) return;
        var v = node[p.name];
        if (Array.isArray(v)) v.forEach(walk); else if (v && typeof v === "object") walk(v);
      });
      (node.$children || []).forEach(walk);
    }
    walk(modeler.getDefinitions());
    return found;
  }

  function shapeOf(id) {
    if (!id) return null;
    var direct = registry.get(id);
    if (direct) return direct;
    var node = findModdle(id);
    while (node) {
      if (node.id && registry.get(node.id)) return registry.get(node.id);
      if (is(node, "bpmn:Process")) {
        var owner = registry.filter(function (e) { return e.businessObject && e.businessObject.processRef === node; })[0];
        if (owner) return owner;
      }
      node = node.$parent;
    }
    return null;
  }

  function clearFindings() {
    overlays.remove({type: "yicun-finding"});
    registry.getAll().forEach(function (e) {
      canvas.removeMarker(e, "finding-error");
      canvas.removeMarker(e, "finding-warning");
    });
  }

  function showFindings(list) {
    findings = list || [];
    clearFindings();
    var byElement = {};
    var items = findings.map(function (f) {
      var target = shapeOf(f.element_id);
      if (target) (byElement[target.id] = byElement[target.id] || {element: target, list: []}).list.push(f);
      var where = target ? ((target.businessObject && target.businessObject.name) || target.id) : (f.element_id || T.whole_file);
      return h("li", {className: "sev-" + f.severity + (target ? " linked" : ""), tabindex: target ? "0" : null,
                      onclick: target ? function () { focusElement(target); } : null,
                      onkeydown: target ? function (e) { if (e.key === "Enter") focusElement(target); } : null}, [
        h("span", {className: "tag sev-" + f.severity, text: f.severity === "error" ? T.error : T.warning}),
        f.rule === "convention" ? h("span", {className: "tag convention", text: T.convention}) : null,
        f.rule === "tests" ? h("span", {className: "tag tests", text: T.tests_tag}) : null,
        h("bdi", {className: "where", text: where}),
        f.line ? h("small", {className: "muted", text: fmt(T.line, {line: f.line})}) : null,
        h("span", {className: "message", text: f.text || f.message}),
        f.text && f.text !== f.message ? h("small", {className: "muted engine", text: f.message}) : null]);
    });
    Object.keys(byElement).forEach(function (id) {
      var entry = byElement[id];
      var error = entry.list.some(function (f) { return f.severity === "error"; });
      canvas.addMarker(entry.element, error ? "finding-error" : "finding-warning");
      var badge = h("div", {className: "finding-badge " + (error ? "error" : "warning"),
                            title: entry.list.map(function (f) { return f.text || f.message; }).join("\n"),
                            onclick: function () { focusElement(entry.element); }},
                    [h("span", {className: "count", text: String(entry.list.length)}),
                     h("span", {className: "text", text: entry.list[0].text || entry.list[0].message})]);
      overlays.add(entry.element, "yicun-finding", {position: {top: -14, left: -6}, html: badge});
    });
    var list = findingsBox.querySelector("ol.findings");
    list.replaceChildren.apply(list, items);
    var count = findingsBox.querySelector(".count");
    count.textContent = String(findings.length);
    count.hidden = false;
    var empty = findingsBox.querySelector(".findings-empty");
    empty.textContent = T.no_findings;
    empty.hidden = findings.length > 0;
  }

  function focusElement(element) {
    selection.select(element);
    if (typeof canvas.scrollToElement === "function") canvas.scrollToElement(element, {top: 80, bottom: 80, left: 80, right: 80});
  }

  function counts(list) {
    var errors = list.filter(function (f) { return f.severity === "error"; }).length;
    return {errors: errors, warnings: list.length - errors};
  }

  // ------------------------------------------------------------------------------------- working copy
  function store(xml) {
    if (leaving) return;  // deployed: a save still pending (a late change event) must not bring the copy back
    try {
      window.localStorage.setItem(storeKey, JSON.stringify({xml: xml, savedAt: new Date().toISOString(),
                                                            filename: config.filename}));
    } catch (e) { /* private mode or full: the server still has the deployed version */ }
  }

  function stored(key) {
    try { return JSON.parse(window.localStorage.getItem(key || storeKey) || "null"); } catch (e) { return null; }
  }

  function forget(key) {
    try { window.localStorage.removeItem(key || storeKey); } catch (e) { /* nothing kept */ }
  }

  function setDirty(value) {
    dirty = value;
    toolbar.querySelector('[data-action="discard"]').disabled = !dirty;
  }

  function scheduleSave() {
    setDirty(true);
    window.clearTimeout(saveTimer);
    saveTimer = window.setTimeout(function () {
      modeler.saveXML({format: true}).then(function (r) { store(r.xml); });
    }, 300);
  }

  function notice(text, buttons) {
    var node = h("p", {className: "notice"}, [h("span", {text: text})].concat((buttons || []).map(function (b) {
      return h("button", {type: "button", className: "link", text: b[0], onclick: function () { node.remove(); b[1](); }});
    })));
    notices.appendChild(node);
    return node;
  }

  function otherCopies() {
    var prefix = STORE_PREFIX + config.processId + ":";
    var found = [];
    try {
      for (var i = 0; i < window.localStorage.length; i++) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(prefix) === 0 && key !== storeKey) found.push(key);
      }
    } catch (e) { /* no storage */ }
    return found;
  }

  // ------------------------------------------------------------------------------------------- server
  function post(url, extra) {
    return modeler.saveXML({format: true}).then(function (r) {
      store(r.xml);
      var info = processInfo();
      var filename = config.mode === "new" && info ? info.bo.id + ".bpmn" : config.filename;
      var body = {xml: r.xml, filename: filename, base_version: config.baseVersion};
      Object.keys(extra || {}).forEach(function (k) { body[k] = extra[k]; });
      return window.fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify(body)});
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") < 0) return {status: response.status, body: null};
      return response.json().then(function (body) { return {status: response.status, body: body}; });
    });
  }

  function check() {
    say(T.checking, "busy");
    return post(config.urls.check).then(function (r) {
      if (!r.body || r.status !== 200) { say(fmt(T.failed, {status: r.status}), "error"); return; }
      showFindings(r.body.findings);
      var c = counts(r.body.findings);
      if (c.errors) say(fmt(T.checked_some, c), "error");
      else if (c.warnings) say(fmt(T.checked_warnings, c), "ok");
      else say(T.checked_ok, "ok");
    }).catch(function () { say(T.offline, "error"); });
  }

  /* the reason field's message (null: none) */
  function reasonError(text) {
    var node = overrideBox.querySelector(".field-error");
    var field = overrideBox.querySelector("textarea");
    node.textContent = text || "";
    node.hidden = !text;
    if (text) { field.setAttribute("aria-invalid", "true"); field.focus(); } else field.removeAttribute("aria-invalid");
  }

  function showOverride(tests) {
    var list = overrideBox.querySelector(".override-tests");
    list.replaceChildren.apply(list, (tests || []).map(function (t) {
      return h("li", {}, [h("span", {text: fmt(T.tests_of, {process: t.process_id, count: t.count}) + " · "}),
                          h("a", {href: t.url, target: "_blank", rel: "noopener", text: T.open_tests}),
                          h("ol", {className: "override-failures"}, (t.failures || []).map(function (text) {
                            return h("li", {text: text});
                          }))]);
    }));
    reasonError(null);
    overrideBox.hidden = false;
    overrideBox.querySelector("textarea").focus();
  }

  function hideOverride() { overrideBox.hidden = true; }

  function deployAnyway() {
    var reason = overrideBox.querySelector("textarea").value.trim();
    if (!reason) { reasonError(T.reason_missing); return; }
    if (reason.length > config.maxReason) {
      reasonError(fmt(T.reason_too_long, {max: config.maxReason, count: reason.length}));
      return;
    }
    reasonError(null);
    deploy(reason);
  }

  function deploy(reason) {
    say(T.deploying, "busy");
    return post(config.urls.deploy, reason === undefined ? null : {override_reason: reason}).then(function (r) {
      if (r.status === 422 && r.body && r.body.outcome === "reason_invalid") {
        say(r.body.error, "error");
        reasonError(r.body.error);
        return;
      }
      if (r.status === 422 && r.body && r.body.outcome === "tests_failed") {
        showFindings(r.body.findings);
        say(T.tests_failed, "error");
        showOverride(r.body.tests);
        return;
      }
      hideOverride();
      if (r.status === 422 && r.body) {
        showFindings(r.body.findings);
        var first = r.body.findings[0];  // refused for the file as a whole (e.g. a newer version): say why
        say(first && !first.element_id && r.body.findings.length === 1 ? first.text || first.message : T.deploy_refused,
            "error");
        return;
      }
      if (r.status !== 200 || !r.body) { say(fmt(T.failed, {status: r.status}), "error"); return; }
      leaving = true;
      window.clearTimeout(saveTimer);
      forget();
      setDirty(false);
      say(fmt(r.body.created ? T.deployed : T.unchanged, {version: r.body.version}), "ok");
      window.location.assign(r.body.redirect);
    }).catch(function () { say(T.offline, "error"); });
  }

  // ------------------------------------------------------------------------------------------- toolbar
  function download() {
    modeler.saveXML({format: true}).then(function (r) {
      var info = processInfo();
      var a = h("a", {href: URL.createObjectURL(new Blob([r.xml], {type: "application/xml"})),
                      download: config.mode === "new" && info ? info.bo.id + ".bpmn" : config.filename});
      document.body.appendChild(a);
      a.click();
      window.setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    });
  }

  function openLocal(file) {
    if (!file) return;
    if (file.size > config.maxBytes) {
      say(fmt(T.too_large, {limit: Math.round(config.maxBytes / 1048576)}), "error");
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      var text = String(reader.result || "");
      if (text.replace(/^\ufeff/, "").trim().charAt(0) !== "<") { say(T.not_xml, "error"); return; }
      load(text).then(function (ok) {
        if (!ok) return;
        scheduleSave();
        say(fmt(T.opened, {name: file.name}), "ok");
        check();
      });
    };
    reader.readAsText(file, "utf-8");
  }

  function discard() {
    if (!window.confirm(T.confirm_discard)) return;
    forget();
    load(config.xml).then(function () {
      setDirty(false);
      showFindings(config.findings || []);
      say(T.discarded, "ok");
    });
  }

  /* the whole process in view, right of the palette (which floats over the drawing's left edge) */
  function fit() {
    canvas.resized();
    canvas.zoom("fit-viewport", "auto");
    var palette = box.querySelector(".djs-palette");
    var room = palette ? palette.offsetWidth + 16 : 0;
    var width = box.querySelector(".modeler-canvas").clientWidth;
    if (width > room * 2) {
      canvas.zoom(Math.min(1, canvas.zoom() * (width - room) / width), "auto");
      canvas.scroll({dx: room / 2, dy: 0});
    }
  }

  function updateUndo() {
    toolbar.querySelector('[data-action="undo"]').disabled = !commandStack.canUndo();
    toolbar.querySelector('[data-action="redo"]').disabled = !commandStack.canRedo();
  }

  function wireToolbar() {
    toolbar.addEventListener("click", function (e) {
      var action = e.target.getAttribute && e.target.getAttribute("data-action");
      if (action === "undo") commandStack.undo();
      else if (action === "redo") commandStack.redo();
      else if (action === "fit") fit();
      else if (action === "check") check();
      else if (action === "deploy") deploy();
      else if (action === "download") download();
      else if (action === "discard") discard();
    });
    toolbar.querySelector('input[data-action="open"]').addEventListener("change", function (e) {
      openLocal(e.target.files && e.target.files[0]);
      e.target.value = "";
    });
    toolbar.hidden = false;
    overrideBox.querySelector('[data-override="deploy"]').addEventListener("click", deployAnyway);
    overrideBox.querySelector('[data-override="cancel"]').addEventListener("click", hideOverride);
  }

  // ------------------------------------------------------------------------------------------- start
  function load(xml) {
    return modeler.importXML(xml).then(function () {
      fit();
      render();
      updateUndo();
      return true;
    }).catch(function (error) {
      say(fmt(T.import_failed, {message: (error && error.message) || String(error)}), "error");
      return false;
    });
  }

  function start(descriptor) {
    modeler = new window.BpmnJS({container: box.querySelector(".modeler-canvas"),
                                 moddleExtensions: {camunda: descriptor}});
    window.yicunModeler = modeler;  // for the browser tests' round trip
    modeling = modeler.get("modeling");
    registry = modeler.get("elementRegistry");
    selection = modeler.get("selection");
    canvas = modeler.get("canvas");
    overlays = modeler.get("overlays");
    moddle = modeler.get("moddle");
    bpmnFactory = modeler.get("bpmnFactory");
    elementFactory = modeler.get("elementFactory");
    commandStack = modeler.get("commandStack");
    commandStack.registerHandler("yicun.batch", BatchHandler);
    var events = modeler.get("eventBus");
    events.on("selection.changed", render);
    events.on("commandStack.changed", function (e) {
      render();
      updateUndo();
      if (e.trigger !== "clear") scheduleSave();  // an import clears the stack: nothing was edited
    });
    wireToolbar();

    var kept = stored();
    var restore = kept && kept.xml && kept.xml !== config.xml;
    load(restore ? kept.xml : config.xml).then(function (ok) {
      if (!ok && restore) {  // a working copy the modeler cannot read: fall back to the file as deployed
        forget();
        return load(config.xml);
      }
      if (restore) {
        setDirty(true);
        notice(fmt(T.restored, {time: new Date(kept.savedAt).toLocaleString()}), [[T.discard, discard]]);
      } else if (config.fromUpload) {
        scheduleSave();
      }
      if (config.findings) showFindings(config.findings);
      otherCopies().forEach(function (key) {
        var copy = stored(key);
        if (!copy || !copy.xml) return;
        var version = key.slice(key.lastIndexOf(":") + 1);
        notice(fmt(T.other_copy, {version: version}), [
          [T.open_copy, function () { load(copy.xml).then(function (ok2) { if (ok2) { forget(key); scheduleSave(); } }); }],
          [T.drop_copy, function () { forget(key); }]]);
      });
      return ok;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.BpmnJS !== "function" || typeof window.fetch !== "function") {
      say(fmt(T.import_failed, {message: "bpmn-js"}), "error");
      return;
    }
    window.fetch(config.urls.descriptor, {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(start)
      .catch(function (error) { say(fmt(T.import_failed, {message: error.message}), "error"); });
  });
})();
