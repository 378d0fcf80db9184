/*
 * Handlers registered by the app (System.on, Particle.function/variable/subscribe). They are kept
 * in the host layer and invoked by the simulator through the bridge exports (otarig_host.h).
 */
#pragma once

#include <functional>
#include <string>
#include <vector>
#include "spark_wiring_string.h"
#include "system_event.h"

namespace otarig {

enum class HandlerKind { FULL, EVENT_PARAM, EVENT_ONLY, NO_ARGS };

struct SystemHandler {
    system_event_t mask;
    HandlerKind kind;
    void* fn;
};

enum class VarType { INT, UINT, DOUBLE, BOOL, STRING, CSTR };

struct Variable {
    std::string name;
    VarType type;
    const void* ptr;
};

struct Function {
    std::string name;
    std::function<int(String)> fn;
};

struct Subscription {
    std::string prefix;
    std::function<void(const char*, const char*)> fn;
};

struct Registry {
    std::vector<SystemHandler> systemHandlers;
    std::vector<Function> functions;
    std::vector<Variable> variables;
    std::vector<Subscription> subscriptions;
};

Registry& registry();

}  // namespace otarig
