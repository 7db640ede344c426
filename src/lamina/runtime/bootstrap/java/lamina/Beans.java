package lamina;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plain Java objects to and from parsed JSON, by their public setters/getters and public fields
 * (what Jackson does by default for a POJO, without annotations or custom serialisers).
 */
final class Beans {
    private Beans() {
    }

    /** `value` (parsed JSON) as an instance of `type` (generic `target` when known). */
    static Object convert(Object value, Class<?> type, Type target) throws Exception {
        if (value == null) {
            if (type.isPrimitive()) {
                throw new IllegalArgumentException("null for primitive " + type.getName());
            }
            return null;
        }
        if (type == Object.class) {
            return value;
        }
        if (value instanceof List && (List.class.isAssignableFrom(type) || Collection.class.isAssignableFrom(type))) {
            Type item = target instanceof ParameterizedType ? ((ParameterizedType) target).getActualTypeArguments()[0]
                    : Object.class;
            List<Object> out = new ArrayList<>();
            for (Object element : (List<?>) value) {
                out.add(convert(element, raw(item), item));
            }
            return out;
        }
        if (value instanceof Map && Map.class.isAssignableFrom(type)) {
            return value;
        }
        if (type.isInstance(value)) {
            return value;
        }
        if (type == String.class) {
            return value instanceof String ? value : Json.write(value);
        }
        if (value instanceof Number) {
            Number n = (Number) value;
            if (type == int.class || type == Integer.class) return n.intValue();
            if (type == long.class || type == Long.class) return n.longValue();
            if (type == double.class || type == Double.class) return n.doubleValue();
            if (type == float.class || type == Float.class) return n.floatValue();
            if (type == short.class || type == Short.class) return n.shortValue();
            if (type == byte.class || type == Byte.class) return n.byteValue();
        }
        if ((type == boolean.class || type == Boolean.class) && value instanceof Boolean) {
            return value;
        }
        if (type.isEnum() && value instanceof String) {
            for (Object constant : type.getEnumConstants()) {
                if (((Enum<?>) constant).name().equals(value)) {
                    return constant;
                }
            }
        }
        if (value instanceof Map && !type.isInterface() && !Modifier.isAbstract(type.getModifiers())) {
            Object bean = type.getDeclaredConstructor().newInstance();
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                set(bean, String.valueOf(entry.getKey()), entry.getValue());
            }
            return bean;
        }
        throw new IllegalArgumentException("Lamina's Java runtime cannot deserialize " + Json.write(value)
                + " into " + type.getName());
    }

    private static Class<?> raw(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) type).getRawType();
        }
        return Object.class;
    }

    private static void set(Object bean, String name, Object value) throws Exception {
        if (name.isEmpty()) {
            return;
        }
        String setter = "set" + Character.toUpperCase(name.charAt(0)) + name.substring(1);
        for (Method method : bean.getClass().getMethods()) {
            if (method.getName().equals(setter) && method.getParameterCount() == 1) {
                method.invoke(bean, convert(value, method.getParameterTypes()[0], method.getGenericParameterTypes()[0]));
                return;
            }
        }
        try {
            Field field = bean.getClass().getField(name);
            if (!Modifier.isStatic(field.getModifiers()) && !Modifier.isFinal(field.getModifiers())) {
                field.set(bean, convert(value, field.getType(), field.getGenericType()));
            }
        } catch (NoSuchFieldException ignored) {
            // an unknown property is ignored (Jackson would fail; AWS's runtime configures it not to)
        }
    }

    /** A bean's properties: public getters (getX / isX) and public fields, in declaration order. */
    static Map<String, Object> properties(Object bean) {
        Map<String, Object> out = new LinkedHashMap<>();
        try {
            for (Field field : bean.getClass().getFields()) {
                if (!Modifier.isStatic(field.getModifiers())) {
                    out.put(field.getName(), field.get(bean));
                }
            }
            for (Method method : bean.getClass().getMethods()) {
                if (method.getParameterCount() != 0 || Modifier.isStatic(method.getModifiers())
                        || method.getDeclaringClass() == Object.class) {
                    continue;
                }
                String name = method.getName();
                String property = null;
                if (name.startsWith("get") && name.length() > 3) {
                    property = name.substring(3);
                } else if (name.startsWith("is") && name.length() > 2
                        && (method.getReturnType() == boolean.class || method.getReturnType() == Boolean.class)) {
                    property = name.substring(2);
                }
                if (property != null) {
                    out.put(Character.toLowerCase(property.charAt(0)) + property.substring(1), method.invoke(bean));
                }
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot serialise " + bean.getClass().getName() + ": " + e, e);
        }
        return out;
    }
}
