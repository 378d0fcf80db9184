/*
 * The bridge exports (docs/dev/architecture.md "Bridge ABI", version 4): binding, the run loop
 * with abort semantics, build-time configuration, the retained section and the entry points
 * through which the simulator invokes the app's handlers.
 */
#include <stdio.h>
#include <string.h>
#include <exception>
#include <string>

#include "Particle.h"
#include "otarig_registry.h"

namespace {

// Inert defaults so that an unbound or partially bound library never calls through NULL.
uint32_t default_millis() { return 0; }
int default_delay(uint32_t) { return 1; }       // abort: nothing can advance time
int default_loop_done() { return 1; }
int default_serial(int op, uint8_t*, int len) { return op == OTARIG_SERIAL_WRITE ? len : 0; }
int default_system(int, int) { return 0; }
int default_cloud(int, const char*, const char*, int) { return 0; }
int default_sleep(const otarig_sleep_request*) { return -1; }
int default_gpio(int, int, int) { return 0; }   // no pins: writes go nowhere, reads are LOW

otarig_host_api g_api = {default_millis, default_delay, default_loop_done, default_serial,
                         default_system, default_cloud, default_sleep, nullptr, 0, default_gpio};

// Build-time configuration (otarig_config). Constant-initialised, so static constructors that
// record SYSTEM_MODE / SYSTEM_THREAD / PRODUCT_* may run in any order.
int g_config[4] = {AUTOMATIC, 0, PLATFORM_ID, 0xFFFF};

bool g_running = false;

// Always present so that __start_/__stop_retained_user are defined (and local to this library).
volatile uint32_t g_retained_anchor __attribute__((section("retained_user"), used)) = 0x6f746172u;

// snprintf-like copy: returns the full length, writes at most outlen-1 bytes plus NUL.
int copy_out(const std::string& s, char* out, int outlen) {
    if (out && outlen > 0) {
        size_t n = s.size() < (size_t)(outlen - 1) ? s.size() : (size_t)(outlen - 1);
        memcpy(out, s.data(), n);
        out[n] = 0;
    }
    return (int)s.size();
}

const char* var_type_name(otarig::VarType t) {
    switch (t) {
        case otarig::VarType::INT:
        case otarig::VarType::UINT: return "int32";
        case otarig::VarType::DOUBLE: return "double";
        case otarig::VarType::BOOL: return "bool";
        default: return "string";
    }
}

}  // namespace

extern "C" char __start_retained_user[] __attribute__((visibility("hidden")));
extern "C" char __stop_retained_user[] __attribute__((visibility("hidden")));

namespace otarig {

const otarig_host_api& api() { return g_api; }

Registry& registry() {
    static Registry r;
    return r;
}

void set_config(int key, int value) {
    if (key >= 0 && key < (int)(sizeof(g_config) / sizeof(g_config[0]))) g_config[key] = value;
}

}  // namespace otarig

void system_thread_set_state(spark::feature::State state, void*) {
    otarig::set_config(OTARIG_CONFIG_THREADED, state == spark::feature::ENABLED ? 1 : 0);
}

extern "C" {

int otarig_abi_version(void) { return OTARIG_ABI_VERSION; }

void otarig_bind(const otarig_host_api* api) {
    if (!api) return;
    g_api = *api;  // copied: the caller's struct need not outlive this call
    if (!g_api.millis) g_api.millis = default_millis;
    if (!g_api.delay) g_api.delay = default_delay;
    if (!g_api.loop_done) g_api.loop_done = default_loop_done;
    if (!g_api.serial) g_api.serial = default_serial;
    if (!g_api.system) g_api.system = default_system;
    if (!g_api.cloud) g_api.cloud = default_cloud;
    if (!g_api.sleep) g_api.sleep = default_sleep;
    if (!g_api.gpio) g_api.gpio = default_gpio;
}

void otarig_run(void) {
    // Architecture "Execution model": setup(); loop forever; return only when aborted.
    if (g_running) return;
    g_running = true;
    try {
        setup();
        for (;;) {
            loop();
            if (g_api.loop_done() != 0) throw otarig::AppTerminated();
        }
    } catch (const otarig::AppTerminated&) {
        // terminated by the simulator (reset, power cut, HIBERNATE)
    } catch (const std::exception& e) {
        fprintf(stderr, "otarig: app raised %s (treated as a panic)\n", e.what());
    } catch (...) {
        fprintf(stderr, "otarig: app raised an unknown exception (treated as a panic)\n");
    }
    g_running = false;
}

int otarig_config(int key) {
    if (key < 0 || key >= (int)(sizeof(g_config) / sizeof(g_config[0]))) return -1;
    return g_config[key];
}

void* otarig_retained(uint32_t* len) {
    if (len) *len = (uint32_t)(__stop_retained_user - __start_retained_user);
    return __start_retained_user;
}

void otarig_system_event(uint64_t event, int param) {
    // docs/reference/particle-ota.md §2.2: every handler whose mask contains the event runs. Copy: a handler may register more.
    const auto handlers = otarig::registry().systemHandlers;
    for (const auto& h : handlers) {
        if (!(h.mask & event)) continue;
        try {
            switch (h.kind) {
                case otarig::HandlerKind::FULL:
                    reinterpret_cast<void (*)(system_event_t, int, void*)>(h.fn)(event, param, nullptr);
                    break;
                case otarig::HandlerKind::EVENT_PARAM:
                    reinterpret_cast<void (*)(system_event_t, int)>(h.fn)(event, param);
                    break;
                case otarig::HandlerKind::EVENT_ONLY:
                    reinterpret_cast<void (*)(system_event_t)>(h.fn)(event);
                    break;
                case otarig::HandlerKind::NO_ARGS:
                    reinterpret_cast<void (*)()>(h.fn)();
                    break;
            }
        } catch (...) {
            // a handler must not block; an abort raised here is re-observed by the app itself
        }
    }
}

int otarig_call_function(const char* name, const char* arg, int* found) {
    if (found) *found = 0;
    if (!name) return -1;
    for (const auto& f : otarig::registry().functions) {
        if (f.name == name) {
            if (found) *found = 1;
            try {
                return f.fn(String(arg ? arg : ""));
            } catch (...) {
                return -1;
            }
        }
    }
    return -1;
}

int otarig_get_variable(const char* name, char* out, int outlen) {
    if (!name) return -1;
    for (const auto& v : otarig::registry().variables) {
        if (v.name != name) continue;
        char buf[64];
        std::string s;
        switch (v.type) {
            case otarig::VarType::INT: snprintf(buf, sizeof(buf), "%d", *(const int*)v.ptr); s = buf; break;
            case otarig::VarType::UINT: snprintf(buf, sizeof(buf), "%u", *(const uint32_t*)v.ptr); s = buf; break;
            case otarig::VarType::DOUBLE: snprintf(buf, sizeof(buf), "%.17g", *(const double*)v.ptr); s = buf; break;
            case otarig::VarType::BOOL: s = *(const bool*)v.ptr ? "true" : "false"; break;
            case otarig::VarType::STRING: s = ((const String*)v.ptr)->c_str(); break;
            case otarig::VarType::CSTR: s = v.ptr ? (const char*)v.ptr : ""; break;
        }
        return copy_out(s, out, outlen);
    }
    return -1;
}

int otarig_cloud_event(const char* name, const char* data) {
    if (!name) return 0;
    const auto subs = otarig::registry().subscriptions;
    int called = 0;
    for (const auto& s : subs) {
        if (strncmp(name, s.prefix.c_str(), s.prefix.size()) != 0) continue;
        try {
            s.fn(name, data ? data : "");
        } catch (...) {
        }
        called++;
    }
    return called;
}

int otarig_list(int what, char* out, int outlen) {
    std::string s;
    auto add = [&s](const std::string& item) {
        if (!s.empty()) s += '\n';
        s += item;
    };
    const auto& r = otarig::registry();
    switch (what) {
        case OTARIG_LIST_FUNCTIONS: for (const auto& f : r.functions) add(f.name); break;
        case OTARIG_LIST_VARIABLES: for (const auto& v : r.variables) add(v.name); break;
        case OTARIG_LIST_SUBSCRIPTIONS: for (const auto& x : r.subscriptions) add(x.prefix); break;
        case OTARIG_LIST_VARIABLE_TYPES:
            for (const auto& v : r.variables) add(v.name + "\t" + var_type_name(v.type));
            break;
        default: return -1;
    }
    return copy_out(s, out, outlen);
}

}  // extern "C"
