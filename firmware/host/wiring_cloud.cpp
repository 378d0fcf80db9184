/*
 * Particle (CloudClass) and Cellular for the host build: connection control forwards to the
 * simulator; registered handlers stay here for the bridge exports (otarig_bridge.cpp).
 */
#include "Particle.h"
#include "otarig_registry.h"

CloudClass Particle;
CellularClass Cellular;

namespace otarig {
int cloud(int op, const char* a, const char* b, int flags) {
    return checked(api().cloud(op, a, b, flags));
}
}  // namespace otarig

namespace {
bool add_variable(const char* name, otarig::VarType type, const void* ptr, const char* typeName) {
    if (!name || !ptr) return false;
    if (otarig::cloud(OTARIG_CLOUD_VARIABLE, name, typeName) <= 0) return false;
    auto& vs = otarig::registry().variables;
    for (auto& v : vs) {
        if (v.name == name) {
            v.type = type;
            v.ptr = ptr;
            return true;
        }
    }
    vs.push_back({name, type, ptr});
    return true;
}
}  // namespace

bool CloudClass::variable(const char* name, const int& var) { return add_variable(name, otarig::VarType::INT, &var, "int32"); }
bool CloudClass::variable(const char* name, const uint32_t& var) { return add_variable(name, otarig::VarType::UINT, &var, "int32"); }
bool CloudClass::variable(const char* name, const double& var) { return add_variable(name, otarig::VarType::DOUBLE, &var, "double"); }
bool CloudClass::variable(const char* name, const bool& var) { return add_variable(name, otarig::VarType::BOOL, &var, "bool"); }
bool CloudClass::variable(const char* name, const String& var) { return add_variable(name, otarig::VarType::STRING, &var, "string"); }
bool CloudClass::variable(const char* name, const char* var) { return add_variable(name, otarig::VarType::CSTR, var, "string"); }

bool CloudClass::function(const char* name, user_function_int_str_t* fn) {
    if (!fn) return false;
    return function(name, std::function<int(String)>(fn));
}

bool CloudClass::function(const char* name, std::function<int(String)> fn) {
    if (!name || !fn) return false;
    if (otarig::cloud(OTARIG_CLOUD_FUNCTION, name) <= 0) return false;
    auto& fs = otarig::registry().functions;
    for (auto& f : fs) {
        if (f.name == name) {
            f.fn = fn;
            return true;
        }
    }
    fs.push_back({name, fn});
    return true;
}

bool CloudClass::subscribe(const char* prefix, EventHandler handler) {
    if (!handler) return false;
    return subscribe(prefix, std::function<void(const char*, const char*)>(handler));
}

bool CloudClass::subscribe(const char* prefix, EventHandler handler, Spark_Subscription_Scope_TypeDef) {
    return subscribe(prefix, handler);
}

bool CloudClass::subscribe(const char* prefix, std::function<void(const char*, const char*)> handler) {
    if (!prefix || !handler) return false;
    if (otarig::cloud(OTARIG_CLOUD_SUBSCRIBE, prefix) <= 0) return false;
    otarig::registry().subscriptions.push_back({prefix, handler});
    return true;
}

void CloudClass::unsubscribe() { otarig::registry().subscriptions.clear(); }

particle::Future<bool> CloudClass::publish_(const char* name, const char* data, PublishFlags flags) {
    int rc = otarig::cloud(OTARIG_CLOUD_PUBLISH, name ? name : "", data ? data : "", flags.value());
    return particle::Future<bool>(rc > 0);
}

void CloudClass::connect() { otarig::cloud(OTARIG_CLOUD_CONNECT); }
void CloudClass::disconnect() { otarig::cloud(OTARIG_CLOUD_DISCONNECT); }
bool CloudClass::connected() { return otarig::cloud(OTARIG_CLOUD_CONNECTED) > 0; }
bool CloudClass::connecting() { return otarig::cloud(OTARIG_CLOUD_CONNECTING) > 0; }
void CloudClass::process() { otarig::cloud(OTARIG_CLOUD_PROCESS); }
String CloudClass::deviceID() { return String(""); }

void CellularClass::on() { otarig::sys(OTARIG_SYS_CELLULAR_ON); }
void CellularClass::off() { otarig::sys(OTARIG_SYS_CELLULAR_OFF); }
bool CellularClass::ready() { return otarig::sys(OTARIG_SYS_CELLULAR_READY) > 0; }
void CellularClass::connect(unsigned flags) { otarig::sys(OTARIG_SYS_CELLULAR_CONNECT, (int)flags); }
void CellularClass::disconnect() { otarig::sys(OTARIG_SYS_CELLULAR_DISCONNECT); }
